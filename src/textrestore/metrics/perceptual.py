"""LPIPS (Zhang et al. 2018) through torchmetrics, with offline-only backbone weights.

LPIPS needs two sets of weights:

* the small linear heads ("lin" layers, v0.1), which ship inside ``torchmetrics``
  (``torchmetrics/functional/image/lpips_models/{alex,vgg,squeeze}.pth``), and
* the ImageNet backbone of torchvision (AlexNet by default), which torchvision would
  download. textrestore never downloads: pass the file with ``weights=PATH`` or put it
  where torch's hub cache looks (``$TORCH_HOME/hub/checkpoints/``, by default
  ``~/.cache/torch/hub/checkpoints/``). Without it a ``FileNotFoundError`` names the file.

Backbone files (torchvision's names):

- ``net="alex"`` (the LPIPS default): ``alexnet-owt-7be5be79.pth``
- ``net="vgg"``: ``vgg16-397923af.pth``
- ``net="squeeze"``: ``squeezenet1_1-b8a52dc0.pth``
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from textrestore.metrics.functional import Reduction, _check_pair, _reduce, gt_mean_align

__all__ = ["LPIPS", "lpips", "lpips_backbone_file", "find_torchvision_weights", "load_state_dict"]

LpipsNet = Literal["alex", "vgg", "squeeze"]

# torchvision architecture and the file name of its ImageNet weights (weights enum .url).
_BACKBONES: dict[str, tuple[str, str]] = {
    "alex": ("alexnet", "alexnet-owt-7be5be79.pth"),
    "vgg": ("vgg16", "vgg16-397923af.pth"),
    "squeeze": ("squeezenet1_1", "squeezenet1_1-b8a52dc0.pth"),
}


# Smallest H and W each backbone accepts (its pooling stages need at least one pixel).
_MIN_SIDE: dict[str, int] = {"alex": 31, "vgg": 16, "squeeze": 17}


def lpips_backbone_file(net: str = "alex") -> str:
    """File name of the torchvision ImageNet weights an LPIPS backbone needs.

    Args:
        net: ``"alex"``, ``"vgg"`` or ``"squeeze"``.

    Returns:
        The file name torchvision downloads into ``$TORCH_HOME/hub/checkpoints/``.

    Example:
        >>> lpips_backbone_file("alex")
        'alexnet-owt-7be5be79.pth'
    """
    if net not in _BACKBONES:
        raise ValueError(f"unknown LPIPS net {net!r}; choose one of {sorted(_BACKBONES)}")
    return _BACKBONES[net][1]


def find_torchvision_weights(filename: str, weights: str | os.PathLike[str] | None) -> Path:
    """Return the local file of torchvision weights; never download.

    Looks at ``weights`` if given, else at ``torch.hub.get_dir()/checkpoints/filename``
    (which honours ``TORCH_HOME``).

    Args:
        filename: torchvision's file name, e.g. ``"vgg19-dcbb9e9d.pth"``.
        weights: an explicit path (file) or None.

    Returns:
        The path of an existing file.

    Raises:
        FileNotFoundError: with the file name and the places it may go.

    Example:
        >>> find_torchvision_weights("no-such-file.pth", None)
        Traceback (most recent call last):
        ...
        FileNotFoundError: ...no-such-file.pth...
    """
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"weights file {str(path)!r} does not exist (expected torchvision's {filename})"
            )
        return path
    cache = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if cache.is_file():
        return cache
    raise FileNotFoundError(
        f"the ImageNet backbone weights {filename!r} are not available offline, and "
        f"textrestore never downloads them. Put the file at {str(cache)!r} (the torch hub "
        f"cache; set TORCH_HOME to move it) or pass its path as weights=..."
        f" (download once from https://download.pytorch.org/models/{filename} on a machine "
        f"with network access)"
    )


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Load a state dict from ``.safetensors`` or a torch file (``weights_only=True``).

    Strips a leading ``module.`` (DataParallel) from the keys.

    Args:
        path: the file.

    Returns:
        The state dict on CPU.

    Example:
        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as d:
        ...     torch.save({"module.w": torch.ones(1)}, os.path.join(d, "w.pth"))
        ...     sorted(load_state_dict(os.path.join(d, "w.pth")))
        ['w']
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd = load_file(str(path), device="cpu")
    else:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ValueError(f"{str(path)!r} does not hold a state dict (got {type(sd).__name__})")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in sd.items()}


def _load_backbone(backbone: nn.Module, state: dict[str, Tensor], net: str) -> None:
    """Copy torchvision ``features.{i}.*`` weights into torchmetrics' sliced backbone."""
    # torchmetrics keeps torchvision's feature modules, renamed slice{k}.{i}: map i -> slice.
    where: dict[str, str] = {}
    for name, _ in backbone.named_children():
        for idx, _ in getattr(backbone, name).named_children():
            where[idx] = name
    mapped: dict[str, Tensor] = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "features":
            parts = parts[1:]
        elif parts[0] == "classifier":
            continue
        if parts and parts[0] in where:
            mapped[".".join([where[parts[0]], *parts])] = value
    missing, _ = backbone.load_state_dict(mapped, strict=False)
    if missing:
        raise ValueError(
            f"the LPIPS {net!r} backbone file does not match torchvision's "
            f"{_BACKBONES[net][0]}: missing {missing[:4]}{'...' if len(missing) > 4 else ''}"
        )


def _build_lpips_net(
    net: str = "alex",
    weights: str | os.PathLike[str] | None = None,
    *,
    _random_backbone: bool = False,
) -> nn.Module:
    """torchmetrics' LPIPS network with local weights only (private: tests use the flag)."""
    if net not in _BACKBONES:
        raise ValueError(f"unknown LPIPS net {net!r}; choose one of {sorted(_BACKBONES)}")
    path = None if _random_backbone else find_torchvision_weights(_BACKBONES[net][1], weights)
    try:
        import torchmetrics.functional.image.lpips as tm_lpips
    except ImportError as err:  # pragma: no cover - torchmetrics is a dependency
        raise ImportError("LPIPS needs torchmetrics and torchvision installed") from err
    # pretrained=False / pnet_rand=True: torchmetrics builds the backbone with random
    # weights and loads nothing; we load both parts ourselves, offline, weights_only.
    model = tm_lpips._NoTrainLpips(
        net=net, pretrained=False, pnet_rand=True  # type: ignore[arg-type]
    )
    lin_file = Path(tm_lpips.__file__).parent / "lpips_models" / f"{net}.pth"
    if not lin_file.is_file():  # pragma: no cover - shipped with torchmetrics
        raise FileNotFoundError(f"torchmetrics' LPIPS head weights are missing: {lin_file}")
    lin_state = torch.load(str(lin_file), map_location="cpu", weights_only=True)
    missing, unexpected = model.load_state_dict(lin_state, strict=False)
    if unexpected or any(k in missing for k in lin_state):
        raise ValueError(f"unexpected LPIPS head file {lin_file}")  # pragma: no cover
    if path is not None:
        _load_backbone(model.net, load_state_dict(path), net)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class LPIPS(nn.Module):
    """Learned perceptual image patch similarity (lower is more similar), per image.

    A thin module over torchmetrics' LPIPS network (v0.1 linear heads shipped with
    torchmetrics) whose ImageNet backbone comes from a local file only; see the module
    docstring. Inputs are in ``[0, 1]`` and are mapped to ``[-1, 1]`` inside.

    Args:
        net: backbone, ``"alex"`` (the LPIPS default), ``"vgg"`` or ``"squeeze"``.
        weights: path of torchvision's backbone weights; None looks in the torch hub cache.

    Shape:
        - pred, target: (B, 3, H, W) in [0, 1]
        - output: (B,)

    Example:
        >>> LPIPS("alex", weights="/nonexistent/alexnet.pth")
        Traceback (most recent call last):
        ...
        FileNotFoundError: ...alexnet-owt-7be5be79.pth...
    """

    def __init__(
        self, net: LpipsNet = "alex", weights: str | os.PathLike[str] | None = None
    ) -> None:
        super().__init__()
        self.net_name = net
        self.net = _build_lpips_net(net, weights)

    @classmethod
    def _random(cls, net: LpipsNet = "alex") -> LPIPS:
        """An LPIPS with a randomly initialised backbone (tests only; values meaningless)."""
        obj = cls.__new__(cls)
        nn.Module.__init__(obj)
        obj.net_name = net
        obj.net = _build_lpips_net(net, _random_backbone=True)
        return obj

    def train(self, mode: bool = True) -> LPIPS:
        """Keep the network in eval mode (it has dropout layers)."""
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """LPIPS per image of (B, 3, H, W) inputs in [0, 1]."""
        if pred.shape != target.shape or pred.ndim != 4 or pred.shape[1] != 3:
            raise ValueError(
                f"LPIPS expects pred and target of the same shape (B, 3, H, W), got "
                f"{tuple(pred.shape)} and {tuple(target.shape)}"
            )
        side = _MIN_SIDE[self.net_name]
        if min(pred.shape[-2:]) < side:
            raise ValueError(
                f"LPIPS with net={self.net_name!r} needs H, W >= {side}, got "
                f"{tuple(pred.shape[-2:])}"
            )
        out = self.net(pred, target, normalize=True)
        return out.reshape(out.shape[0])


_CACHE: dict[tuple[str, str | None, str, torch.dtype], LPIPS] = {}


def lpips(
    pred: Tensor,
    target: Tensor,
    net: LpipsNet = "alex",
    weights: str | os.PathLike[str] | LPIPS | None = None,
    gt_mean: bool = False,
    reduction: Reduction = "none",
) -> Tensor:
    """LPIPS distance per image (Zhang et al. 2018; torchmetrics' network, offline weights).

    ``LPIPS(x, y) = sum_l mean_hw || w_l * (phi_l(x) - phi_l(y)) ||^2`` over the
    unit-normalised features ``phi_l`` of five backbone layers.

    Args:
        pred: restored image(s), RGB in ``[0, 1]``.
        target: reference image(s), same shape.
        net: backbone, ``"alex"`` (default, as the LPIPS package) , ``"vgg"``, ``"squeeze"``.
        weights: path of torchvision's backbone file, or an :class:`LPIPS` module to reuse;
            None looks in ``$TORCH_HOME/hub/checkpoints/``. Modules built from paths are
            cached per (net, path, device, dtype).
        gt_mean: apply :func:`gt_mean_align` to ``pred`` first.
        reduction: ``"none"`` (per image), ``"mean"`` or ``"sum"`` over the batch.

    Returns:
        LPIPS distance (0 for identical images).

    Raises:
        FileNotFoundError: the backbone weights are not available locally.

    Shape:
        - pred, target: (B, 3, H, W) or (3, H, W)
        - output: (B,) (or () for a single image) with ``reduction="none"``, else ()

    Example:
        >>> x = torch.rand(1, 3, 32, 32)
        >>> lpips(x, x, weights="/nonexistent/alexnet.pth")
        Traceback (most recent call last):
        ...
        FileNotFoundError: ...
    """
    p, t, single = _check_pair(pred, target, 1.0, name="lpips")
    if p.shape[1] != 3:
        raise ValueError(f"lpips expects RGB images (3 channels), got shape {tuple(p.shape)}")
    if gt_mean:
        p = gt_mean_align(p, t)
    if isinstance(weights, LPIPS):
        module = weights
    else:
        # Resolve the file before the cache so a missing file always raises.
        filename = lpips_backbone_file(net)
        path = str(find_torchvision_weights(filename, weights))
        key = (net, path, str(p.device), p.dtype)
        cached = _CACHE.get(key)
        if cached is None:
            cached = LPIPS(net, path).to(device=p.device, dtype=p.dtype)
            _CACHE[key] = cached
        module = cached
    with torch.no_grad():
        values = module(p, t)
    return _reduce(values, reduction, single)

"""Training losses for image restoration: L1, MSE, Charbonnier, SSIM, MS-SSIM, perceptual.

Each loss is a function and an ``nn.Module`` with ``loss_weight`` (a factor applied to the
result) and ``reduction`` (``"mean"``, ``"sum"`` or ``"none"``). :class:`CombinedLoss`
sums weighted terms; its default ``{"l1": 1.0, "ssim": 1.0}`` is the L1 + SSIM objective
of NaLSuper (arXiv 2501.06546).

Inputs are (B, C, H, W) floating tensors of the same shape. Unlike the metrics, the losses
check shapes and dtypes but not values: an untrained network's output may leave [0, 1],
and a value check would synchronise the device at every step. The SSIM constants assume
``data_range`` (1 by default).

``reduction="none"`` returns the element-wise map (B, C, H, W) for the pixel losses and
one value per image (B,) for SSIM, MS-SSIM and the perceptual loss.

Example:
    >>> import torch
    >>> from textrestore.losses import CombinedLoss
    >>> criterion = CombinedLoss({"l1": 1.0, "ssim": 1.0})
    >>> pred = torch.rand(2, 3, 32, 32, requires_grad=True)
    >>> loss = criterion(pred, torch.rand(2, 3, 32, 32))
    >>> loss.backward()
    >>> sorted(criterion.last_terms)
    ['l1', 'ssim']
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textrestore._checks import check_image_batch
from textrestore.metrics.functional import MS_SSIM_BETAS, ms_ssim_per_image, ssim_per_image
from textrestore.metrics.perceptual import find_torchvision_weights, load_state_dict

__all__ = [
    "l1_loss",
    "mse_loss",
    "charbonnier_loss",
    "ssim_loss",
    "ms_ssim_loss",
    "L1Loss",
    "MSELoss",
    "CharbonnierLoss",
    "SSIMLoss",
    "MSSSIMLoss",
    "PerceptualLoss",
    "CombinedLoss",
    "LOSSES",
    "PRESETS",
    "build_loss",
    "list_losses",
]

Reduction = Literal["mean", "sum", "none"]
_REDUCTIONS = ("mean", "sum", "none")


def _check_inputs(pred: object, target: object, name: str) -> tuple[Tensor, Tensor]:
    p = check_image_batch(pred, "pred")
    t = check_image_batch(target, "target")
    if p.shape != t.shape:
        raise ValueError(
            f"{name}: pred and target must have the same shape, got pred {tuple(p.shape)} and "
            f"target {tuple(t.shape)}"
        )
    return p, t


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {list(_REDUCTIONS)}, got {reduction!r}")


def _reduce(x: Tensor, reduction: str) -> Tensor:
    _check_reduction(reduction)
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    return x


# --------------------------------------------------------------------------- functions


def l1_loss(pred: Tensor, target: Tensor, reduction: Reduction = "mean") -> Tensor:
    """Mean absolute error ``|pred - target|``.

    Args:
        pred: prediction.
        target: reference, same shape.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (element-wise).

    Returns:
        The loss.

    Shape:
        - pred, target: (B, C, H, W)
        - output: () or (B, C, H, W) for ``"none"``

    Example:
        >>> l1_loss(torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4))
        tensor(1.)
    """
    p, t = _check_inputs(pred, target, "l1_loss")
    _check_reduction(reduction)
    return F.l1_loss(p, t, reduction=reduction)


def mse_loss(pred: Tensor, target: Tensor, reduction: Reduction = "mean") -> Tensor:
    """Mean squared error ``(pred - target)^2``.

    Args:
        pred: prediction.
        target: reference, same shape.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (element-wise).

    Returns:
        The loss.

    Shape:
        - pred, target: (B, C, H, W)
        - output: () or (B, C, H, W) for ``"none"``

    Example:
        >>> mse_loss(torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5))
        tensor(0.2500)
    """
    p, t = _check_inputs(pred, target, "mse_loss")
    _check_reduction(reduction)
    return F.mse_loss(p, t, reduction=reduction)


def charbonnier_loss(
    pred: Tensor, target: Tensor, eps: float = 1e-3, reduction: Reduction = "mean"
) -> Tensor:
    """Charbonnier (smooth L1) loss ``sqrt((pred - target)^2 + eps^2)``.

    The form of LapSRN/MPRNet: its minimum, at ``pred == target``, is ``eps`` (not 0),
    where the gradient is 0.

    Args:
        pred: prediction.
        target: reference, same shape.
        eps: smoothing constant (> 0).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (element-wise).

    Returns:
        The loss.

    Shape:
        - pred, target: (B, C, H, W)
        - output: () or (B, C, H, W) for ``"none"``

    Example:
        >>> x = torch.rand(1, 3, 4, 4)
        >>> charbonnier_loss(x, x)
        tensor(0.0010)
    """
    p, t = _check_inputs(pred, target, "charbonnier_loss")
    if not eps > 0:
        raise ValueError(f"charbonnier_loss: eps must be > 0, got {eps}")
    diff = p - t
    return _reduce(torch.sqrt(diff * diff + eps * eps), reduction)


def ssim_loss(
    pred: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    reduction: Reduction = "mean",
    padding: Literal["valid", "reflect"] = "valid",
) -> Tensor:
    """``1 - SSIM`` per image (Gaussian window 11, sigma 1.5, per channel, averaged).

    Uses the same SSIM as :func:`textrestore.metrics.ssim` (checked against skimage). The
    gradient is finite everywhere, including at ``pred == target``.

    Args:
        pred: prediction.
        target: reference, same shape.
        data_range: value range of the images (sets the SSIM constants).
        window_size: side of the Gaussian window (odd).
        sigma: standard deviation of the Gaussian window.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per image).
        padding: ``"valid"`` (needs H, W >= window_size) or ``"reflect"``.

    Returns:
        The loss.

    Shape:
        - pred, target: (B, C, H, W)
        - output: () or (B,) for ``"none"``

    Example:
        >>> x = torch.rand(1, 3, 16, 16)
        >>> ssim_loss(x, x)
        tensor(0.)
    """
    p, t = _check_inputs(pred, target, "ssim_loss")
    _check_reduction(reduction)
    per_image = ssim_per_image(p, t, data_range, window_size, sigma, padding=padding)
    return _reduce(1.0 - per_image, reduction)


def ms_ssim_loss(
    pred: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    betas: tuple[float, ...] = MS_SSIM_BETAS,
    reduction: Reduction = "mean",
) -> Tensor:
    """``1 - MS-SSIM`` per image (5 scales; see :func:`textrestore.metrics.ms_ssim`).

    Args:
        pred: prediction.
        target: reference, same shape.
        data_range: value range of the images.
        betas: exponent per scale (5 scales need H, W >= 176; pass fewer for small crops).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per image).

    Returns:
        The loss.

    Shape:
        - pred, target: (B, C, H, W)
        - output: () or (B,) for ``"none"``

    Example:
        >>> x = torch.rand(1, 3, 44, 44)
        >>> ms_ssim_loss(x, x, betas=(0.5, 0.3, 0.2))
        tensor(0.)
    """
    p, t = _check_inputs(pred, target, "ms_ssim_loss")
    _check_reduction(reduction)
    return _reduce(1.0 - ms_ssim_per_image(p, t, data_range, betas=betas), reduction)


# --------------------------------------------------------------------------- modules


class _WeightedLoss(nn.Module):
    def __init__(self, loss_weight: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__()
        _check_reduction(reduction)
        if isinstance(loss_weight, bool) or not isinstance(loss_weight, (int, float)):
            raise TypeError(f"loss_weight must be a number, got {type(loss_weight).__name__}")
        self.loss_weight = float(loss_weight)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"loss_weight={self.loss_weight}, reduction={self.reduction!r}"


class L1Loss(_WeightedLoss):
    """``loss_weight * l1_loss(pred, target)``; see :func:`l1_loss`.

    Args:
        loss_weight: factor applied to the loss.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Shape:
        - pred, target: (B, C, H, W)
        - output: () or (B, C, H, W) for ``"none"``

    Example:
        >>> L1Loss(loss_weight=2.0)(torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4))
        tensor(2.)
    """

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return self.loss_weight * l1_loss(pred, target, self.reduction)


class MSELoss(_WeightedLoss):
    """``loss_weight * mse_loss(pred, target)``; see :func:`mse_loss`.

    Args:
        loss_weight: factor applied to the loss.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Shape:
        - pred, target: (B, C, H, W)
        - output: () or (B, C, H, W) for ``"none"``

    Example:
        >>> MSELoss()(torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4))
        tensor(1.)
    """

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return self.loss_weight * mse_loss(pred, target, self.reduction)


class CharbonnierLoss(_WeightedLoss):
    """``loss_weight * charbonnier_loss(pred, target, eps)``; see :func:`charbonnier_loss`.

    Args:
        loss_weight: factor applied to the loss.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        eps: smoothing constant.

    Shape:
        - pred, target: (B, C, H, W)
        - output: () or (B, C, H, W) for ``"none"``

    Example:
        >>> CharbonnierLoss(eps=1e-3)(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2))
        tensor(1.0000)
    """

    def __init__(
        self, loss_weight: float = 1.0, reduction: Reduction = "mean", eps: float = 1e-3
    ) -> None:
        super().__init__(loss_weight, reduction)
        if not eps > 0:
            raise ValueError(f"CharbonnierLoss: eps must be > 0, got {eps}")
        self.eps = float(eps)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return self.loss_weight * charbonnier_loss(pred, target, self.eps, self.reduction)


class SSIMLoss(_WeightedLoss):
    """``loss_weight * (1 - SSIM)``; see :func:`ssim_loss`.

    Args:
        loss_weight: factor applied to the loss.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per image).
        data_range: value range of the images.
        window_size: side of the Gaussian window (odd).
        sigma: standard deviation of the Gaussian window.
        padding: ``"valid"`` or ``"reflect"``.

    Shape:
        - pred, target: (B, C, H, W)
        - output: () or (B,) for ``"none"``

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> SSIMLoss(reduction="none")(x, x)
        tensor([0., 0.])
    """

    def __init__(
        self,
        loss_weight: float = 1.0,
        reduction: Reduction = "mean",
        data_range: float = 1.0,
        window_size: int = 11,
        sigma: float = 1.5,
        padding: Literal["valid", "reflect"] = "valid",
    ) -> None:
        super().__init__(loss_weight, reduction)
        self.data_range = float(data_range)
        self.window_size = int(window_size)
        self.sigma = float(sigma)
        self.padding = padding

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return self.loss_weight * ssim_loss(
            pred, target, self.data_range, self.window_size, self.sigma, self.reduction,
            self.padding,
        )


class MSSSIMLoss(_WeightedLoss):
    """``loss_weight * (1 - MS-SSIM)``; see :func:`ms_ssim_loss`.

    Args:
        loss_weight: factor applied to the loss.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per image).
        data_range: value range of the images.
        betas: exponent per scale.

    Shape:
        - pred, target: (B, C, H, W)
        - output: () or (B,) for ``"none"``

    Example:
        >>> x = torch.rand(1, 3, 22, 22)
        >>> MSSSIMLoss(betas=(0.5, 0.5))(x, x)
        tensor(0.)
    """

    def __init__(
        self,
        loss_weight: float = 1.0,
        reduction: Reduction = "mean",
        data_range: float = 1.0,
        betas: tuple[float, ...] = MS_SSIM_BETAS,
    ) -> None:
        super().__init__(loss_weight, reduction)
        self.data_range = float(data_range)
        self.betas = tuple(float(b) for b in betas)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return self.loss_weight * ms_ssim_loss(
            pred, target, self.data_range, self.betas, self.reduction
        )


# --------------------------------------------------------------------------- perceptual

_VGG = {"vgg16": "vgg16-397923af.pth", "vgg19": "vgg19-dcbb9e9d.pth"}
# torchvision's VGG configurations "D" (vgg16) and "E" (vgg19); "M" is a 2x2 max pool.
_VGG_CFG: dict[str, list[int | str]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _vgg_layer_names(vgg_type: str) -> list[str]:
    """Names of torchvision's ``vgg.features[i]``: conv1_1, relu1_1, ..., pool5."""
    names: list[str] = []
    block, conv = 1, 1
    for v in _VGG_CFG[vgg_type]:
        if v == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


def _vgg_features(vgg_type: str, num_layers: int) -> nn.Sequential:
    """The first ``num_layers`` modules of torchvision's ``vgg.features`` (same indices)."""
    layers: list[nn.Module] = []
    in_ch = 3
    for v in _VGG_CFG[vgg_type]:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_ch, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            in_ch = int(v)
        if len(layers) >= num_layers:
            break
    return nn.Sequential(*layers[:num_layers])


class PerceptualLoss(_WeightedLoss):
    """Distance between VGG features (Johnson et al. 2016), weights from a local file only.

    ``loss = loss_weight * sum_l w_l * criterion(phi_l(pred), phi_l(target))`` with the
    ImageNet-normalised features ``phi_l`` of torchvision's VGG (layer names ``conv1_1``,
    ``relu1_1``, ... ``pool5``). The default ``{"conv5_4": 1.0}`` on VGG19 with L1 is
    BasicSR's default. The backbone is frozen and stays in eval mode.

    Args:
        layer_weights: layer name -> weight.
        vgg_type: ``"vgg19"`` or ``"vgg16"``.
        weights: path of torchvision's ImageNet file (``vgg19-dcbb9e9d.pth`` or
            ``vgg16-397923af.pth``); None looks in ``$TORCH_HOME/hub/checkpoints/``.
            Never downloads: a missing file raises ``FileNotFoundError`` naming it.
        criterion: ``"l1"`` or ``"mse"``.
        loss_weight: factor applied to the loss.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per image).

    Shape:
        - pred, target: (B, 3, H, W) in [0, 1]
        - output: () or (B,) for ``"none"``

    Example:
        >>> PerceptualLoss(weights="/nonexistent/vgg19.pth")
        Traceback (most recent call last):
        ...
        FileNotFoundError: ...vgg19-dcbb9e9d.pth...
    """

    def __init__(
        self,
        layer_weights: Mapping[str, float] | None = None,
        vgg_type: Literal["vgg19", "vgg16"] = "vgg19",
        weights: str | os.PathLike[str] | None = None,
        criterion: Literal["l1", "mse"] = "l1",
        loss_weight: float = 1.0,
        reduction: Reduction = "mean",
        *,
        _random_init: bool = False,
    ) -> None:
        super().__init__(loss_weight, reduction)
        if vgg_type not in _VGG:
            raise ValueError(f"vgg_type must be one of {sorted(_VGG)}, got {vgg_type!r}")
        if criterion not in ("l1", "mse"):
            raise ValueError(f"criterion must be 'l1' or 'mse', got {criterion!r}")
        path = None if _random_init else find_torchvision_weights(_VGG[vgg_type], weights)
        names = _vgg_layer_names(vgg_type)
        self.layer_weights = dict({"conv5_4": 1.0} if layer_weights is None else layer_weights)
        unknown = [k for k in self.layer_weights if k not in names]
        if unknown:
            raise ValueError(f"unknown {vgg_type} layer(s) {unknown}; valid names: {names}")
        if not self.layer_weights:
            raise ValueError("PerceptualLoss needs at least one layer in layer_weights")
        last = max(names.index(k) for k in self.layer_weights)
        self.features = _vgg_features(vgg_type, last + 1)
        self.names = names[: last + 1]
        if path is not None:
            # Only the layers up to the deepest one used are needed; the classifier and
            # deeper layers of the file are ignored.
            state = {
                k[len("features."):]: v
                for k, v in load_state_dict(path).items()
                if k.startswith("features.") and int(k.split(".")[1]) <= last
            }
            missing, _ = self.features.load_state_dict(state, strict=False)
            if missing:
                raise ValueError(
                    f"{str(path)!r} is not a torchvision {vgg_type} state dict: missing "
                    f"features.{missing[0]} (and {len(missing) - 1} more)"
                )
        self.criterion = criterion
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), False)
        self.features.eval()
        for p in self.features.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Keep the frozen backbone in eval mode."""
        super().train(mode)
        self.features.eval()
        return self

    mean: Tensor
    std: Tensor

    def _feats(self, x: Tensor) -> dict[str, Tensor]:
        x = (x - self.mean) / self.std
        out: dict[str, Tensor] = {}
        for name, layer in zip(self.names, self.features):
            x = layer(x)
            if name in self.layer_weights:
                out[name] = x
        return out

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        p, t = _check_inputs(pred, target, "PerceptualLoss")
        if p.shape[1] != 3:
            raise ValueError(f"PerceptualLoss expects RGB (B, 3, H, W), got {tuple(p.shape)}")
        fp = self._feats(p)
        with torch.no_grad():
            ft = self._feats(t.detach())
        total = torch.zeros(p.shape[0], dtype=p.dtype, device=p.device)
        for name, w in self.layer_weights.items():
            diff = fp[name] - ft[name]
            d = diff.abs() if self.criterion == "l1" else diff * diff
            total = total + w * d.flatten(1).mean(dim=1)
        return self.loss_weight * _reduce(total, self.reduction)


# --------------------------------------------------------------------------- combined

#: Name -> loss module class, used by :class:`CombinedLoss` and :func:`build_loss`.
LOSSES: dict[str, type[nn.Module]] = {
    "l1": L1Loss,
    "mse": MSELoss,
    "charbonnier": CharbonnierLoss,
    "ssim": SSIMLoss,
    "ms_ssim": MSSSIMLoss,
    "perceptual": PerceptualLoss,
}

#: Named recipes for :class:`CombinedLoss` (``"nalsuper"`` is the paper's L1 + SSIM).
PRESETS: dict[str, dict[str, float]] = {
    "nalsuper": {"l1": 1.0, "ssim": 1.0},
    "l1+ssim": {"l1": 1.0, "ssim": 1.0},
    "l1": {"l1": 1.0},
    "charbonnier": {"charbonnier": 1.0},
    "charbonnier+ssim": {"charbonnier": 1.0, "ssim": 1.0},
}

TermSpec = float | Mapping[str, Any] | nn.Module


def list_losses() -> list[str]:
    """Names of the single losses and of the presets.

    Returns:
        Sorted names.

    Example:
        >>> "ssim" in list_losses() and "nalsuper" in list_losses()
        True
    """
    return sorted(set(LOSSES) | set(PRESETS))


def _unknown(name: str) -> ValueError:
    return ValueError(
        f"unknown loss {name!r}; valid losses: {sorted(LOSSES)}; presets: {sorted(PRESETS)}"
    )


def _build_term(name: str, spec: TermSpec, reduction: str) -> tuple[nn.Module, float]:
    if isinstance(spec, nn.Module):
        return spec, 1.0
    base = name.split("@", 1)[0]  # "l1@2" allows the same loss twice
    if base not in LOSSES:
        raise _unknown(name)
    if isinstance(spec, Mapping):
        kwargs = dict(spec)
        weight = kwargs.pop("weight", kwargs.pop("loss_weight", 1.0))
    elif isinstance(spec, (int, float)) and not isinstance(spec, bool):
        kwargs, weight = {}, spec
    else:
        raise TypeError(
            f"loss {name!r}: expected a weight (float), a dict of arguments or an nn.Module, "
            f"got {type(spec).__name__}"
        )
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise TypeError(f"loss {name!r}: weight must be a number, got {weight!r}")
    kwargs.setdefault("reduction", reduction)
    return LOSSES[base](**kwargs), float(weight)


class CombinedLoss(nn.Module):
    """Weighted sum of losses; ``CombinedLoss()`` is NaLSuper's L1 + SSIM (1:1).

    ``total = sum_k w_k * loss_k(pred, target)``. After every call, :attr:`last_terms`
    holds each term's weighted, detached value (they sum to the total), for logging.

    Args:
        terms: a preset name (``"nalsuper"``, ``"l1+ssim"``, ... see :data:`PRESETS`), a
            single loss name (``"l1"``), or a mapping name -> spec, where the spec is a
            weight (``{"l1": 1.0}``), a dict of constructor arguments with an optional
            ``"weight"`` (``{"charbonnier": {"weight": 1.0, "eps": 1e-3}}``), or any
            ``nn.Module`` ``(pred, target) -> scalar`` (weight 1). Default: L1 + SSIM.
        reduction: ``"mean"`` or ``"sum"``, passed to every named term.

    Shape:
        - pred, target: (B, C, H, W)
        - output: ()

    Example:
        >>> crit = CombinedLoss("nalsuper")
        >>> x, y = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
        >>> total, terms = crit(x, y, return_terms=True)
        >>> bool(torch.isclose(total, terms["l1"] + terms["ssim"]))
        True
        >>> CombinedLoss({"l3": 1.0})
        Traceback (most recent call last):
        ...
        ValueError: unknown loss 'l3'; valid losses: [...]; presets: [...]
    """

    def __init__(
        self,
        terms: str | Mapping[str, TermSpec] | None = None,
        reduction: Literal["mean", "sum"] = "mean",
    ) -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(f"CombinedLoss: reduction must be 'mean' or 'sum', got {reduction!r}")
        if terms is None:
            terms = PRESETS["nalsuper"]
        elif isinstance(terms, str):
            if terms in PRESETS:
                terms = PRESETS[terms]
            elif terms in LOSSES:
                terms = {terms: 1.0}
            else:
                raise _unknown(terms)
        if not isinstance(terms, Mapping):
            raise TypeError(
                f"CombinedLoss: expected a name or a mapping name -> weight, got "
                f"{type(terms).__name__}"
            )
        if not terms:
            raise ValueError("CombinedLoss needs at least one term")
        self.losses = nn.ModuleDict()
        self.weights: dict[str, float] = {}
        for name, spec in terms.items():
            module, weight = _build_term(str(name), spec, reduction)
            self.losses[str(name).replace(".", "_")] = module
            self.weights[str(name).replace(".", "_")] = weight
        self.last_terms: dict[str, Tensor] = {}

    @classmethod
    def from_config(cls, config: str | Mapping[str, Any]) -> CombinedLoss:
        """Build from a config: a name, ``{"terms": {...}, "reduction": ...}`` or a term mapping.

        Example:
            >>> CombinedLoss.from_config({"terms": {"l1": 1.0, "ssim": 0.5}}).weights
            {'l1': 1.0, 'ssim': 0.5}
        """
        if isinstance(config, Mapping) and "terms" in config:
            return cls(config["terms"], config.get("reduction", "mean"))
        return cls(config)  # type: ignore[arg-type]

    def forward(
        self, pred: Tensor, target: Tensor, return_terms: bool = False
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """Return the weighted total (and, with ``return_terms``, the weighted terms)."""
        _check_inputs(pred, target, "CombinedLoss")
        total: Tensor | None = None
        terms: dict[str, Tensor] = {}
        for name, module in self.losses.items():
            value = self.weights[name] * module(pred, target)
            terms[name] = value
            total = value if total is None else total + value
        self.last_terms = {k: v.detach() for k, v in terms.items()}
        if total is None:  # pragma: no cover - at least one term is enforced
            raise RuntimeError("CombinedLoss has no terms")
        return (total, terms) if return_terms else total

    def extra_repr(self) -> str:
        return f"weights={self.weights}"


def build_loss(spec: str | Mapping[str, Any] | None = None) -> nn.Module:
    """Build a loss module from a name or config (a single loss or a :class:`CombinedLoss`).

    Args:
        spec: a single loss name (``"l1"`` -> :class:`L1Loss`), ``{"type": "ssim", ...}``
            (constructor arguments), a preset name, or a term mapping / config for
            :class:`CombinedLoss`. None gives NaLSuper's L1 + SSIM.

    Returns:
        The loss module.

    Example:
        >>> build_loss("l1")
        L1Loss(loss_weight=1.0, reduction='mean')
        >>> build_loss({"type": "charbonnier", "eps": 1e-6}).eps
        1e-06
    """
    if isinstance(spec, str) and spec in LOSSES:
        return LOSSES[spec]()
    if isinstance(spec, Mapping) and "type" in spec:
        kwargs = dict(spec)
        name = str(kwargs.pop("type"))
        if name not in LOSSES:
            raise _unknown(name)
        factory: Callable[..., nn.Module] = LOSSES[name]
        return factory(**kwargs)
    if spec is None or isinstance(spec, (str, Mapping)):
        return CombinedLoss.from_config(spec if spec is not None else "nalsuper")
    raise TypeError(f"build_loss: expected a name or a config dict, got {type(spec).__name__}")

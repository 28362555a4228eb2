"""Enhance any image: any size and kind, padding, tiled inference with smooth blending.

:func:`enhance` takes a path, a PIL image, a NumPy array or a tensor and returns the
same kind. Large images are processed in overlapping tiles whose outputs are blended
with a raised-cosine window (no visible seams); ``tile="auto"`` chooses the tile size
from a memory budget.

Example:
    >>> import numpy as np
    >>> from textrestore import create_model
    >>> model = create_model("nalsuper_t", text_dim=8)
    >>> model.prompt_bank.add("normal light image", _toy_embedding(8))
    >>> out = enhance(np.zeros((37, 53, 3), np.uint8), model=model, device="cpu")
    >>> out.shape, out.dtype
    ((37, 53, 3), dtype('uint8'))
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "enhance",
    "load_model",
    "plan_tiles",
    "tile_window",
    "auto_tile_size",
    "bytes_per_pixel",
    "DEFAULT_MODEL",
]

#: The preset whose shipped weights ``enhance(model=None)`` uses.
DEFAULT_MODEL = "nalsuper_s"

PathLike = str | os.PathLike


def _toy_embedding(dim: int) -> Any:
    """A one-token embedding for doctests (no text encoder needed)."""
    from .text import TextEmbedding

    return TextEmbedding(
        torch.zeros(1, 1, dim), torch.ones(1, 1, dtype=torch.bool), torch.zeros(1, dim)
    )


# -- models ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _cached_model(preset: str | None, weights: str | None) -> nn.Module:
    from .models import create_model, model_from_checkpoint

    if weights is None:
        return create_model(preset or DEFAULT_MODEL, pretrained=True).eval()
    return model_from_checkpoint(weights, preset, default_preset=DEFAULT_MODEL).eval()


def load_model(
    model: str | PathLike | nn.Module | None = None, preset: str | None = None
) -> nn.Module:
    """Resolve ``model`` to an ``nn.Module`` in eval mode.

    Args:
        model: ``None`` (the shipped ``nalsuper_s`` checkpoint), a preset name with shipped
            weights, a path to a ``.safetensors`` / ``.pt`` state dict, or a module
            (returned as is).
        preset: the preset to build for a weights file (default: the preset the file
            names — safetensors metadata or a trainer checkpoint's config — else
            ``nalsuper_s``); a trainer checkpoint's EMA weights are used when present.

    Returns:
        The model (cached: the same object for the same arguments).
    """
    if isinstance(model, nn.Module):
        return model
    if model is None:
        return _cached_model(preset or DEFAULT_MODEL, None)
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(
            f"load_model: expected None, a preset name, a weights path or an nn.Module, "
            f"got {type(model).__name__}"
        )
    from .models import is_model, list_pretrained

    spec = os.fspath(model)
    path = Path(spec)
    if path.suffix in (".safetensors", ".pt", ".pth", ".bin") or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"load_model: weights file not found: {path}")
        return _cached_model(preset, str(path.resolve()))
    if is_model(spec):
        if spec not in list_pretrained():
            raise ValueError(
                f"load_model: no weights ship for preset {spec!r} (shipped: "
                f"{', '.join(list_pretrained()) or 'none'}); pass a weights file"
            )
        return _cached_model(spec, None)
    raise ValueError(f"load_model: {spec!r} is neither a weights file nor a model preset")


def _ensure_prompt(model: nn.Module, prompt: str | None) -> None:
    """Attach the model's text encoder when ``prompt`` is not yet in its prompt bank."""
    bank = getattr(model, "prompt_bank", None)
    if prompt is None or bank is None or prompt in bank or bank.text_encoder is not None:
        return
    name = getattr(model, "text_encoder_name", None)
    if name is None:
        raise ValueError(
            f"enhance: prompt {prompt!r} is not in the model's prompt bank (known: "
            f"{bank.prompts}) and the model names no text encoder to encode it"
        )
    from .text import create_text_encoder

    try:
        encoder = create_text_encoder(name)
    except Exception as err:  # missing optional package or weights
        raise ValueError(
            f"enhance: prompt {prompt!r} is not in the model's prompt bank (known: "
            f"{bank.prompts}); encoding it needs the text encoder {name!r}, which failed: {err}"
        ) from err
    model.set_text_encoder(encoder)  # type: ignore[operator]


# -- tiling ----------------------------------------------------------------------------
def plan_tiles(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with >= ``overlap`` overlap.

    Example:
        >>> plan_tiles(100, 40, 10)
        [0, 30, 60]
        >>> plan_tiles(30, 40, 10)
        [0]
    """
    if tile < 1 or overlap < 0:
        raise ValueError(f"plan_tiles: need tile >= 1 and overlap >= 0, got {tile}, {overlap}")
    if length <= tile:
        return [0]
    if overlap >= tile:
        raise ValueError(f"plan_tiles: overlap ({overlap}) must be smaller than tile ({tile})")
    n = math.ceil((length - overlap) / (tile - overlap))
    if n == 1:
        return [0]
    step = (length - tile) / (n - 1)
    return [round(i * step) for i in range(n)]


def tile_window(size: int, overlap: int) -> Tensor:
    """1-D raised-cosine blending weights: ramps of ``overlap`` samples at both ends.

    The weights are strictly positive, so normalising the accumulated weights is
    well-defined everywhere (an image border is covered by one tile only).

    Example:
        >>> w = tile_window(8, 3)
        >>> [round(v, 2) for v in w.tolist()]
        [0.07, 0.5, 0.93, 1.0, 1.0, 0.93, 0.5, 0.07]
    """
    w = torch.ones(size, dtype=torch.float64)
    ramp = min(overlap, size // 2)
    if ramp > 0:
        i = torch.arange(ramp, dtype=torch.float64)
        r = 0.5 - 0.5 * torch.cos(math.pi * (i + 0.5) / ramp)
        w[:ramp] = r
        w[size - ramp :] = r.flip(0)
    return w.float()


def bytes_per_pixel(model: nn.Module, dtype: torch.dtype = torch.float32) -> int:
    """Estimated peak activation memory per pixel of one no-grad forward.

    For NaLSuper's inference fast path: every block's output is kept for the cross-layer
    fusion in one level buffer, plus the block input, the conv body's buffer and the
    fused output, ``(depth + 3)·C`` values per pixel (measured: 4.4 KB/px for
    ``nalsuper`` in fp32 at 400×600, estimate 4.6 KB/px). Other models: 1024 values per
    pixel (a conservative guess).
    """
    item = torch.empty(0, dtype=dtype).element_size()
    dim, depth = getattr(model, "dim", None), getattr(model, "depth", None)
    if isinstance(dim, int) and isinstance(depth, int):
        return (depth + 3) * dim * item
    return 1024 * item


#: Float32 values per image pixel that a tiled call holds besides the model's activations:
#: the input (3), the blended sum (3) and its weight (1), their quotient (3) and the
#: concatenated batch output (3).
_IMAGE_BUFFER_FLOATS = 13


def _resident_bytes() -> int:
    """The process's current resident memory (Linux ``/proc/self/statm``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def _default_budget(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.5)
    return 2 * 1024**3


def auto_tile_size(
    model: nn.Module,
    height: int,
    width: int,
    budget: int,
    batch: int = 1,
    overlap: int = 32,
    dtype: torch.dtype = torch.float32,
    multiple: int = 8,
) -> int | None:
    """Tile size for ``tile="auto"``: ``None`` if the whole image fits in ``budget`` bytes.

    Otherwise the largest multiple of ``multiple`` such that ``batch`` tiles of
    ``tile × tile`` fit in the budget (never below ``2·overlap + multiple`` nor 16).

    Example:
        >>> from textrestore import create_model
        >>> m = create_model("nalsuper_t")
        >>> auto_tile_size(m, 64, 64, budget=1 << 30) is None
        True
        >>> auto_tile_size(m, 2000, 3000, budget=64 << 20, batch=4, overlap=16)
        208
    """
    if budget <= 0:
        raise ValueError(f"auto_tile_size: budget must be > 0 bytes, got {budget}")
    bpp = bytes_per_pixel(model, dtype)
    if height * width * bpp <= budget:
        return None
    side = int(math.sqrt(budget / (bpp * max(1, batch))))
    side = side // multiple * multiple
    return max(side, 2 * overlap + multiple, 16)


# -- global context for tiles ----------------------------------------------------------
class _GlobalContext:
    """Give every tile the whole image's global statistics.

    Channel attention (a gate from globally pooled features) and the cross-layer
    attention (an affinity between whole level features) see the full image in a
    whole-image forward but only the tile in a tiled one. A context pass over the image,
    downscaled to the size of one batch of tiles, records each ChannelAttention's
    per-channel gate and each CrossLayerAttention's level affinity; the tiled pass then
    uses them instead of the tile's own. Models without these modules are unaffected.
    """

    def __init__(self, model: nn.Module) -> None:
        from .layers import ChannelAttention, CrossLayerAttention

        self.ca = [m for m in model.modules() if isinstance(m, ChannelAttention)]
        self.cla = [m for m in model.modules() if isinstance(m, CrossLayerAttention)]
        self.gates: dict[int, Tensor] = {}
        self.affinities: dict[int, Tensor] = {}

    def __bool__(self) -> bool:
        return bool(self.ca or self.cla)

    @contextlib.contextmanager
    def record(self) -> Iterator[None]:
        """Store the gates and affinities of one forward (batch of 1).

        The modules keep what they compute (``record_stats``), no hooks: the forward
        stays on the model's memory-lean inference path.
        """
        modules: list[Any] = [*self.ca, *self.cla]
        for m in modules:
            m.record_stats, m.recorded = True, None
        try:
            yield
            self.gates = {i: m.recorded for i, m in enumerate(self.ca) if m.recorded is not None}
            self.affinities = {
                i: m.recorded for i, m in enumerate(self.cla) if m.recorded is not None
            }
        finally:
            for m in modules:
                m.record_stats, m.recorded = False, None

    @contextlib.contextmanager
    def apply(self) -> Iterator[None]:
        """Fix every module's gate and affinity to the recorded ones (no hooks, so the
        model's inference fast path stays on)."""
        fixed: list[tuple[nn.Module, str]] = []
        for i, ca in enumerate(self.ca):
            if i in self.gates:
                ca.fixed_gate = self.gates[i]
                fixed.append((ca, "fixed_gate"))
        for i, cla in enumerate(self.cla):
            if i in self.affinities:
                cla.fixed_affinity = self.affinities[i]
                fixed.append((cla, "fixed_affinity"))
        try:
            yield
        finally:
            for module, name in fixed:
                setattr(module, name, None)


# -- the core --------------------------------------------------------------------------
def _resolve_device(device: str | torch.device) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise TypeError(f"enhance: device must be a str or torch.device, got {type(device)}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("enhance: device='cuda' requested but CUDA is not available")
    return dev


def _autocast(device: torch.device, amp: bool | None) -> contextlib.AbstractContextManager[Any]:
    use = device.type == "cuda" if amp is None else bool(amp)
    if not use:
        return contextlib.nullcontext()
    if device.type == "cuda":
        dt = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        dt = torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dt)


def _pad(x: Tensor, multiple: int) -> tuple[Tensor, int, int]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, h, w
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), h, w


def _forward(model: nn.Module, x: Tensor, prompt: str | None, amp_ctx: Any) -> Tensor:
    multiple = int(getattr(model, "pad_multiple", 1) or 1)
    xp, h, w = _pad(x, multiple)
    with amp_ctx:
        out = model(xp, prompt) if prompt is not None else model(xp)
    return out[..., :h, :w].float()


def _iter_batches(items: list[tuple[int, int]], n: int) -> Iterator[list[tuple[int, int]]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _run_tiled(
    model: nn.Module,
    x: Tensor,
    prompt: str | None,
    tile: int,
    overlap: int,
    tile_batch: int,
    amp_ctx: Any,
    context: bool = True,
) -> Tensor:
    _, c, h, w = x.shape
    th, tw = min(tile, h), min(tile, w)
    ys, xs = plan_tiles(h, th, overlap), plan_tiles(w, tw, overlap)
    wy = tile_window(th, overlap if len(ys) > 1 else 0).to(x.device)
    wx = tile_window(tw, overlap if len(xs) > 1 else 0).to(x.device)
    weight = (wy[:, None] * wx[None, :])[None, None]
    ctx = _GlobalContext(model) if context else None
    outs = []
    for img in x:
        use: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if ctx:
            # context pass: the image at most as large as one batch of tiles
            scale = min(1.0, math.sqrt(tile_batch * th * tw / (h * w)))
            small = img[None]
            if scale < 1.0:
                size = (max(1, round(h * scale)), max(1, round(w * scale)))
                small = F.interpolate(small, size=size, mode="bilinear", antialias=True)
            with ctx.record():
                _forward(model, small, prompt, amp_ctx)
            use = ctx.apply()
        acc = torch.zeros(1, c, h, w, device=x.device)
        norm = torch.zeros(1, 1, h, w, device=x.device)
        coords = [(y, xx) for y in ys for xx in xs]
        with use:
            for batch in _iter_batches(coords, tile_batch):
                tiles = torch.stack([img[:, y : y + th, xx : xx + tw] for y, xx in batch])
                res = _forward(model, tiles, prompt, amp_ctx)
                for (y, xx), r in zip(batch, res):
                    acc[..., y : y + th, xx : xx + tw] += r * weight
                    norm[..., y : y + th, xx : xx + tw] += weight
        outs.append(acc / norm)
    return torch.cat(outs)


@torch.no_grad()
def _enhance_tensor(
    model: nn.Module,
    x: Tensor,
    prompt: str | None,
    tile: int | str | None,
    overlap: int,
    device: torch.device,
    amp: bool | None,
    tile_batch: int,
    memory_budget: int | None,
    context: bool = True,
) -> Tensor:
    """(B, 3, H, W) float in [0, 1] → (B, 3, H, W) float32 in [0, 1] on ``device``."""
    x = x.to(device=device, dtype=torch.float32)
    h, w = x.shape[-2:]
    if tile == "auto":
        budget = memory_budget if memory_budget is not None else _default_budget(device)
        if device.type == "cpu":  # the budget bounds the process: what it holds counts
            budget -= _resident_bytes() + _IMAGE_BUFFER_FLOATS * 4 * x.shape[0] * h * w
        tile = auto_tile_size(model, h, w, max(budget, 1), tile_batch, overlap)
    tile = cast("int | None", tile)  # "auto" resolved above; the rest checked in enhance()
    amp_ctx = _autocast(device, amp)
    if tile is None or (tile >= h and tile >= w):
        out = _forward(model, x, prompt, amp_ctx)
    else:
        out = _run_tiled(model, x, prompt, int(tile), overlap, tile_batch, amp_ctx, context)
    return out.clamp_(0, 1)


def _check_args(tile: object, overlap: object, tile_batch: object) -> None:
    if not (
        tile is None or tile == "auto" or (isinstance(tile, int) and not isinstance(tile, bool))
    ):
        raise TypeError(f"enhance: tile must be None, 'auto' or an int, got {tile!r}")
    if isinstance(tile, int) and tile < 8:
        raise ValueError(f"enhance: tile must be >= 8 pixels, got {tile}")
    if not isinstance(overlap, int) or overlap < 0:
        raise ValueError(f"enhance: overlap must be an int >= 0, got {overlap!r}")
    if isinstance(tile, int) and overlap >= tile:
        raise ValueError(f"enhance: overlap ({overlap}) must be smaller than tile ({tile})")
    if not isinstance(tile_batch, int) or tile_batch < 1:
        raise ValueError(f"enhance: tile_batch must be an int >= 1, got {tile_batch!r}")


def _array_to_float(arr: np.ndarray) -> tuple[np.ndarray, str]:
    """(H, W[, C]) array → (H, W, C) float32 in [0, 1] and a scale tag."""
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0, "u8"
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0, "u16"
    if np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float32), "float"
    raise TypeError(f"enhance: expected a uint8, uint16 or float array, got dtype {arr.dtype}")


def _enhance_array(arr: np.ndarray, run: Any) -> np.ndarray:
    if arr.ndim == 2:
        arr3 = arr[..., None]
    elif arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        arr3 = arr
    else:
        raise ValueError(
            f"enhance: expected an array of shape (H, W, 3), (H, W, 4), (H, W, 1) or (H, W), "
            f"got {arr.shape}"
        )
    if min(arr3.shape[:2]) < 1:
        raise ValueError(f"enhance: image must be at least 1x1, got shape {arr.shape}")
    f, tag = _array_to_float(arr3)
    c = f.shape[2]
    rgb = np.repeat(f, 3, axis=2) if c == 1 else f[..., :3]
    t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
    out = run(t)[0].permute(1, 2, 0).cpu().numpy()
    if c == 1:
        out = out.mean(axis=2, keepdims=True)
    elif c == 4:
        out = np.concatenate([out, f[..., 3:]], axis=2)
    out = out.reshape(arr.shape)
    if tag == "u8":
        return np.round(out * 255.0).astype(np.uint8)
    if tag == "u16":
        return np.round(out * 65535.0).astype(np.uint16)
    return out.astype(arr.dtype)


def _enhance_pil(im: Any, run: Any) -> Any:
    from PIL import Image

    mode = im.mode
    if mode in ("RGB", "L", "RGBA"):
        arr = np.asarray(im)
    elif mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.clip(np.asarray(im).astype(np.int64), 0, 65535).astype(np.uint16)
        out = _enhance_array(arr, run)
        return Image.fromarray(out.astype(np.uint16))
    else:
        arr, mode = np.asarray(im.convert("RGB")), "RGB"
    out = _enhance_array(arr, run)
    return Image.fromarray(out, mode=mode)


def _enhance_torch(t: Tensor, run: Any) -> Tensor:
    if t.ndim not in (3, 4) or t.shape[-3] != 3:
        raise ValueError(
            f"enhance: expected a tensor of shape (3, H, W) or (B, 3, H, W), got {tuple(t.shape)}"
        )
    if min(t.shape) < 1:
        raise ValueError(f"enhance: every dimension must be >= 1, got {tuple(t.shape)}")
    batch = t if t.ndim == 4 else t[None]
    if t.dtype == torch.uint8:
        out = run(batch.float() / 255.0)
        out = torch.round(out * 255.0).to(torch.uint8)
    elif torch.is_floating_point(t):
        out = run(batch).to(t.dtype)
    else:
        raise TypeError(f"enhance: expected a float or uint8 tensor, got dtype {t.dtype}")
    out = out.to(t.device)
    return out if t.ndim == 4 else out[0]


def enhance(
    image: Any,
    model: nn.Module | str | PathLike | None = None,
    prompt: str | None = None,
    tile: int | str | None = None,
    overlap: int = 32,
    device: str | torch.device = "auto",
    amp: bool | None = None,
    *,
    tile_batch: int = 4,
    memory_budget: int | None = None,
    context: bool = True,
) -> Any:
    """Enhance a low-light image with a text-guided model.

    Args:
        image: a path to an image file, a ``PIL.Image``, a NumPy array (H, W, 3) (also
            (H, W), (H, W, 1), (H, W, 4): alpha kept) of dtype uint8, uint16 or float in
            [0, 1], or a tensor (3, H, W) / (B, 3, H, W), float in [0, 1] or uint8.
        model: ``None`` for the shipped ``nalsuper_s`` checkpoint, a module, a preset
            name with shipped weights, or a weights file (see :func:`load_model`).
        prompt: the text prompt (default: the model's default prompt). A prompt the
            model's bank does not hold is encoded by the model's text encoder.
        tile: ``None`` (whole image), a tile side in pixels, or ``"auto"`` (whole image
            when it fits ``memory_budget``, else the largest tile that does).
        overlap: overlap of neighbouring tiles in pixels; raised-cosine blending.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or a device.
        amp: mixed precision (bf16/fp16); ``None`` = on for CUDA, off for CPU.
        tile_batch: tiles per forward.
        memory_budget: bytes for ``tile="auto"``. On CPU the bound on the process's
            resident memory during the call: what the process already holds (torch,
            the model) and the image-sized buffers count against it (default 2 GiB).
            On CUDA the bound on activation memory (default: half the free memory).
        context: when tiling, give every tile the global statistics (channel-attention
            gates, cross-layer affinities) of a context pass over the whole image
            downscaled to the size of one batch of tiles; ``False`` lets each tile use
            its own.

    Returns:
        The same kind as ``image``: a PIL image for a path or PIL input, an array of the
        input's shape and dtype, or a tensor of the input's shape, dtype and device.
        Values are clipped to [0, 1] (the full range for integer types).

    Raises:
        FileNotFoundError: ``image`` is a path that does not exist.
        TypeError: an unsupported input kind or dtype.
        ValueError: a bad shape or argument.

    Example:
        >>> import torch
        >>> from textrestore import create_model
        >>> m = create_model("nalsuper_t", text_dim=8)
        >>> m.prompt_bank.add("normal light image", _toy_embedding(8))
        >>> enhance(torch.rand(3, 40, 50), model=m, tile=24, overlap=8, device="cpu").shape
        torch.Size([3, 40, 50])
    """
    _check_args(tile, overlap, tile_batch)
    if prompt is not None and not isinstance(prompt, str):
        raise TypeError(f"enhance: prompt must be a str or None, got {type(prompt).__name__}")
    dev = _resolve_device(device)
    net = load_model(model)
    _ensure_prompt(net, prompt)
    was_training = net.training
    net.eval()
    try:
        first = next(iter(net.parameters()), None)
        if first is not None and first.device != dev:
            net.to(dev)

        def run(t: Tensor) -> Tensor:
            return _enhance_tensor(
                net, t, prompt, tile, overlap, dev, amp, tile_batch, memory_budget, context
            )

        if isinstance(image, (str, os.PathLike)):
            from PIL import Image

            from .data import read_image_array, to_array

            arr = read_image_array(image)
            return Image.fromarray(to_array(_enhance_array(arr, run), bits=8))
        if isinstance(image, Tensor):
            return _enhance_torch(image, run)
        if isinstance(image, np.ndarray):
            return _enhance_array(image, run)
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover
            Image = None  # type: ignore[assignment]
        if Image is not None and isinstance(image, Image.Image):
            return _enhance_pil(image, run)
        raise TypeError(
            "enhance: expected a path, PIL.Image, numpy array or torch.Tensor, "
            f"got {type(image).__name__}"
        )
    finally:
        net.train(was_training)

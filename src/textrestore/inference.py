"""Enhance any image: any size and kind, padding, tiled inference with smooth blending.

:func:`enhance` takes a path, a PIL image, a NumPy array or a tensor and returns the
same kind. Large images are processed in overlapping tiles whose outputs are blended
with a raised-cosine window (no visible seams); ``tile="auto"`` chooses the tile size
from a memory budget; by default (``tile=None``) the call chooses whole-image or tiled
inference itself from the image size, the model and the free memory.

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

import abc
import contextlib
import copy
import functools
import itertools
import math
import os
import threading
import warnings
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .allocator import freed_memory_kept

__all__ = [
    "enhance",
    "load_model",
    "plan_tiles",
    "tile_window",
    "auto_tile_size",
    "bytes_per_pixel",
    "BadValuesWarning",
    "DEFAULT_MODEL",
    "MIN_AUTO_TILE",
    "IO_BYTES_PER_PIXEL",
    "HEAP_LINGER_S",
    "native_bf16_cpu",
]

#: The preset whose shipped weights ``enhance(model=None)`` uses.
DEFAULT_MODEL = "nalsuper_ms"

#: Seconds after a CPU ``enhance()`` call before glibc's free heap goes back to the system;
#: a call that starts sooner reuses it instead of page-faulting its buffers in again
#: (``benchmarks/results/scaling_heap_linger_nalsuper_ms.json``).
HEAP_LINGER_S = 2.0

PathLike = str | os.PathLike


def _toy_embedding(dim: int) -> Any:
    """A one-token embedding for doctests (no text encoder needed)."""
    from .text import TextEmbedding

    return TextEmbedding(
        torch.zeros(1, 1, dim), torch.ones(1, 1, dtype=torch.bool), torch.zeros(1, dim)
    )


# -- models ----------------------------------------------------------------------------
#: Models this module loaded (``load_model``): their reduced-precision copies are reused
#: across calls (see :func:`_half_copy`); a caller's own module is copied afresh each call.
_LOADED: weakref.WeakSet[nn.Module] = weakref.WeakSet()


@functools.lru_cache(maxsize=4)
def _cached_model(preset: str | None, weights: str | None) -> nn.Module:
    from .models import create_model, model_from_checkpoint

    if weights is None:
        model = create_model(preset or DEFAULT_MODEL, pretrained=True).eval()
    else:
        model = model_from_checkpoint(weights, preset, default_preset=DEFAULT_MODEL).eval()
    _LOADED.add(model)
    return model


def load_model(
    model: str | PathLike | nn.Module | None = None, preset: str | None = None
) -> nn.Module:
    """Resolve ``model`` to an ``nn.Module`` in eval mode.

    Args:
        model: ``None`` (the shipped ``nalsuper_ms`` checkpoint), a preset name with shipped
            weights, a path to a ``.safetensors`` / ``.pt`` state dict, or a module
            (returned as is).
        preset: the preset to build for a weights file (default: the preset the file
            names — safetensors metadata or a trainer checkpoint's config — else
            ``nalsuper_ms``); a trainer checkpoint's EMA weights are used when present.

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


def _multiscale_values(model: nn.Module) -> float | None:
    """Activation values per input pixel of a multi-scale model (``widths`` + depths).

    Scale ``s`` (``1/4^s`` of the pixels) holds its stage's levels, the stage input, the
    conv body and the fused output, ``(depth_s + 3)·w_s`` values, plus the encoder's skip
    (``w_s``) that waits for the decoder. ``nalsuper_ms`` (16/32/64/96): 151.5 values,
    606 B/px in fp32; measured peak RSS of a no-grad forward: 565 B/px at 512×768,
    465 B/px at 1024×1536.
    """
    widths = getattr(model, "widths", None)
    cfg = getattr(model, "config", None)
    if not isinstance(widths, (list, tuple)) or not widths or not isinstance(cfg, dict):
        return None
    enc: Any = cfg.get("enc_depths")
    mid: Any = cfg.get("mid_depth")
    dec: Any = cfg.get("dec_depths")
    n = len(widths)
    try:
        total = 0.0
        for s, w in enumerate(widths):
            if s < n - 1:
                depth, skip = max(int(enc[s]), int(dec[n - 2 - s])), int(w)
            else:
                depth, skip = int(mid), 0
            total += (int(w) * (depth + 3) + skip) / 4**s
    except (TypeError, IndexError, ValueError):
        return None
    return total


def bytes_per_pixel(model: nn.Module, dtype: torch.dtype = torch.float32) -> int:
    """Estimated peak activation memory per pixel of one no-grad forward.

    For NaLSuper's inference fast path: every block's output is kept for the cross-layer
    fusion in one level buffer, plus the block input, the conv body's buffer and the
    fused output, ``(depth + 3)·C`` values per pixel (measured: 4.4 KB/px for
    ``nalsuper`` in fp32 at 400×600, estimate 4.6 KB/px). For a multi-scale model
    (``widths`` at 1, 1/2, 1/4, ... resolution, e.g. ``nalsuper_ms``) the same count per
    scale, weighted by the scale's share of the pixels (see ``_multiscale_values``;
    ``nalsuper_ms``: 606 B/px, measured 465-565 B/px). Other models: 1024 values per
    pixel (a conservative guess).
    """
    item = torch.empty(0, dtype=dtype).element_size()
    dim, depth = getattr(model, "dim", None), getattr(model, "depth", None)
    if isinstance(dim, int) and isinstance(depth, int):
        return (depth + 3) * dim * item
    values = _multiscale_values(model)
    if values is not None:
        return math.ceil(values * item)
    return 1024 * item


#: Activation bytes per forward of a tiled call on CPU, at most (tile side and tiles per
#: forward are capped), but never fewer than :data:`FORWARD_PIXELS` pixels. While every
#: forward mmapped its buffers afresh, forwards beyond half a megapixel ran slower per
#: pixel (``nalsuper_ms`` at 2124×2832, s/MP: 512²×4 tiles 0.69, 512²×1 0.53); with the
#: heap kept for the call (``textrestore.allocator``) larger tiles overlap less and win:
#: ``nalsuper_ms`` (303 B/px in bfloat16) with 2^20 instead of 2^19 pixels, fresh processes,
#: alternating, medians of 3 calls: 6 MP 2.47 vs 2.68 s, 12 MP 4.91 vs 5.17 s, peak RSS 1.38
#: vs 1.12 GB at 12 MP. Models with more bytes per pixel (``nalsuper_s``: 704) keep 2^19
#: pixels, which keeps their peak within the 2 GB default budget.
FORWARD_BYTES = 320 << 20

#: Pixels per forward of a tiled call on CPU, at least (see :data:`FORWARD_BYTES`).
FORWARD_PIXELS = 1 << 19


def _forward_pixels(model: nn.Module, dtype: torch.dtype) -> int:
    """Most pixels one tiled CPU forward of ``model`` sees (:data:`FORWARD_BYTES`)."""
    return max(FORWARD_PIXELS, FORWARD_BYTES // bytes_per_pixel(model, dtype))

#: The automatic tile size never goes below this (at the default 32-px overlap a 256-px
#: tile computes (256/224)² = 1.31x the pixels): a tight budget runs fewer tiles per
#: forward instead of smaller tiles.
MIN_AUTO_TILE = 256

#: Bytes per pixel around a forward that :func:`bytes_per_pixel` does not count: the input
#: in the compute dtype and padded, the float32 output, the model's 3-channel head. Measured
#: with ``tile="whole"`` in bfloat16 at 1 and 2 MP (peak RSS minus resident before the call,
#: per pixel, against the estimate): ``nalsuper_s`` 824-832 vs 704, ``nalsuper_ms`` 424-430
#: vs 303, so about 124 for both; the automatic choice adds this to the model's bytes.
IO_BYTES_PER_PIXEL = 128


def _pixel_cost(model: nn.Module, dtype: torch.dtype) -> int:
    """Bytes per pixel the automatic choice budgets: the model's and the copies around it."""
    return bytes_per_pixel(model, dtype) + IO_BYTES_PER_PIXEL


#: Activation budget of the automatic choice on CPU when none is given (bytes); never more
#: than half the memory the system reports available.
_DEFAULT_CPU_ACTIVATIONS = 1536 * 1024**2


def _resident_bytes() -> int:
    """The process's resident memory in use (Linux ``/proc/self/statm``; 0 elsewhere).

    Memory glibc keeps free in its heap for reuse (the command line's allocator setting,
    :func:`textrestore.allocator.keep_freed_memory`) is resident but not in use: the call's
    buffers reuse it, so it is not counted.
    """
    from .allocator import free_heap_bytes

    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return max(pages * os.sysconf("SC_PAGE_SIZE") - free_heap_bytes(), 0)


def _available_bytes() -> int | None:
    """Memory the system can give without swapping (Linux ``MemAvailable``), else None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _activation_budget(device: torch.device, memory_budget: int | None, image_bytes: int) -> int:
    """Bytes the model's activations may use for one image of ``image_bytes`` buffers.

    An explicit ``memory_budget`` on CPU bounds the process: what it already holds and the
    image-sized buffers count against it. Without one, on CPU: 1.5 GiB, but at most half
    of what the system has available after the image buffers; on CUDA: half the free
    memory (or ``memory_budget``).
    """
    if device.type == "cuda":
        if memory_budget is not None:
            return memory_budget
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.5)
    if memory_budget is not None:
        return max(memory_budget - _resident_bytes() - image_bytes, 1)
    available = _available_bytes()
    if available is None:
        return _DEFAULT_CPU_ACTIVATIONS
    return max(min(_DEFAULT_CPU_ACTIVATIONS, (available - image_bytes) // 2), 64 * 1024**2)


def auto_tile_size(
    model: nn.Module,
    height: int,
    width: int,
    budget: int,
    batch: int = 1,
    overlap: int = 32,
    dtype: torch.dtype = torch.float32,
    multiple: int = 8,
    min_tile: int = MIN_AUTO_TILE,
) -> int | None:
    """Tile size for the automatic choice: ``None`` if the whole image fits in ``budget``.

    A pixel costs :func:`bytes_per_pixel` plus :data:`IO_BYTES_PER_PIXEL` (the image-sized
    copies around a forward). Otherwise the largest multiple of ``multiple`` such that
    ``batch`` tiles of ``tile × tile`` fit in the budget, but never below ``min_tile`` (default 256) nor
    ``4·overlap``: small tiles spend most of their work on the overlap, so a tight
    budget runs fewer tiles per forward instead (see :func:`enhance`).

    Example:
        >>> from textrestore import create_model
        >>> m = create_model("nalsuper_t")
        >>> auto_tile_size(m, 64, 64, budget=1 << 30) is None
        True
        >>> auto_tile_size(m, 2000, 3000, budget=64 << 20, batch=4, overlap=16, min_tile=16)
        176
        >>> auto_tile_size(m, 2000, 3000, budget=64 << 20, batch=4, overlap=16)
        256
    """
    if budget <= 0:
        raise ValueError(f"auto_tile_size: budget must be > 0 bytes, got {budget}")
    bpp = _pixel_cost(model, dtype)
    if height * width * bpp <= budget:
        return None
    side = int(math.sqrt(budget / (bpp * max(1, batch))))
    side = side // multiple * multiple
    return max(side, _tile_floor(overlap, multiple, min_tile))


def _tile_floor(overlap: int, multiple: int = 8, min_tile: int = MIN_AUTO_TILE) -> int:
    """The smallest automatic tile: small tiles spend most of their work on the overlap."""
    return max(min_tile, 4 * overlap, 2 * overlap + multiple, 16)


def _auto_plan(
    model: nn.Module,
    h: int,
    w: int,
    budget: int,
    tile_batch: int,
    overlap: int,
    dtype: torch.dtype = torch.float32,
    forward_pixels: int | None = None,
) -> tuple[int | None, int]:
    """(tile or None for the whole image, tiles per forward) for the automatic choice.

    The largest tile the budget allows, capped so that one forward sees at most
    ``forward_pixels`` (CPU: :data:`FORWARD_BYTES` of activations, at least
    :data:`FORWARD_PIXELS` pixels), is an upper bound: the tile actually used is the
    one (a multiple of 8, not below the floor of :func:`auto_tile_size`) whose grid computes
    the fewest pixels, so that e.g. 2124 rows are cut into 4 tiles of 560 rather than 4
    of 688 overlapping by 160 (1.57x the image's pixels computed, now 1.18x).
    """
    largest = auto_tile_size(model, h, w, budget, tile_batch, overlap, dtype)
    if largest is None:
        return None, tile_batch
    floor = _tile_floor(overlap)
    cap = forward_pixels or h * w * tile_batch
    largest = max(floor, min(largest, math.isqrt(cap) // 8 * 8))

    def computed(t: int) -> int:
        th, tw = min(t, h), min(t, w)
        return len(plan_tiles(h, th, overlap)) * len(plan_tiles(w, tw, overlap)) * th * tw

    candidates = range(largest, floor - 1, -8)
    tile = min(candidates, key=lambda t: (computed(t), -t))
    pixels = min(tile, h) * min(tile, w)
    per_tile = pixels * _pixel_cost(model, dtype)
    batch = min(tile_batch, budget // max(per_tile, 1), cap // pixels)
    return tile, max(1, batch)


# -- global context for tiles ----------------------------------------------------------
def _has_global_statistics(model: nn.Module) -> bool:
    """True if ``model`` has layers whose output depends on the whole image.

    Channel attention (a gate from globally pooled features) and the cross-layer attention
    (an affinity between whole level features) see the full image in a whole-image forward
    but only the tile in a tiled one; a context pass records the whole image's statistics
    (:class:`~textrestore.layers.GlobalStatistics`) and the tiles use them.
    """
    from .layers import ChannelAttention, CrossLayerAttention

    return any(isinstance(m, (ChannelAttention, CrossLayerAttention)) for m in model.modules())


# -- the core --------------------------------------------------------------------------
#: Float inputs further than this outside [0, 1] are an error (an 8-bit image passed as
#: floats, a wrong normalisation); values closer to the range go to the model as they are.
FLOAT_RANGE_SLACK = 0.1

_BAD_VALUES = ("raise", "repair")


class BadValuesWarning(UserWarning):
    """``enhance(..., bad_values="repair")`` replaced NaN/Inf values or clipped the range."""


def _resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a device; ValueError if absent."""
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"enhance: device must be a str or torch.device, got {type(device)}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(
            f"enhance: unknown device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"enhance: device {str(device)!r} requested but CUDA is not available "
                "(use --device cpu or auto)"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"enhance: device {str(device)!r} requested but only "
                f"{torch.cuda.device_count()} CUDA device(s) exist"
            )
    return dev


@functools.lru_cache(maxsize=1)
def native_bf16_cpu() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX, from ``/proc/cpuinfo``).

    There bfloat16 convolutions run at about twice the float32 rate; elsewhere (AVX2-only
    CPUs, other systems) they are emulated and slower than float32.

    Example:
        >>> isinstance(native_bf16_cpu(), bool)
        True
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


def _half_dtype(model: nn.Module, device: torch.device, amp: bool | None) -> torch.dtype | None:
    """The reduced precision of the call, or None for float32 (see ``enhance``'s ``amp``)."""
    if amp is False:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp is None:
        from .models.base import TextGuidedModel

        ours = isinstance(model, TextGuidedModel)
        return torch.bfloat16 if device.type == "cpu" and ours and native_bf16_cpu() else None
    return torch.bfloat16


#: Reduced-precision copies by model, each with the state it was made from (see
#: :func:`_half_copy`); weak keys, so a copy lives no longer than its model.
_HALF_COPIES: weakref.WeakKeyDictionary[nn.Module, tuple[tuple[Any, ...], nn.Module]] = (
    weakref.WeakKeyDictionary()
)
_HALF_COPIES_LOCK = threading.Lock()


_PLAIN = (bool, int, float, str, type(None))


def _tensor_state(model: nn.Module, dtype: torch.dtype) -> tuple[Any, ...]:
    """What a copy of ``model`` depends on: every parameter's and buffer's name, storage,
    in-place version counter, dtype and shape (a load, an in-place edit, a replaced tensor
    or a newly added prompt changes it), and per submodule its plain attributes (flags
    such as ``fused_attn``, the mode) and hooks."""
    tensors = itertools.chain(model.named_parameters(), model.named_buffers())
    modules = tuple(
        (
            tuple((k, v) for k, v in vars(m).items() if isinstance(v, _PLAIN)),
            tuple(m._forward_hooks), tuple(m._forward_pre_hooks),
        )
        for m in model.modules()
    )  # fmt: skip
    return (dtype, modules, tuple(
        (name, t.data_ptr(), t._version, t.dtype, tuple(t.shape), t.device) for name, t in tensors
    ))  # fmt: skip


def _half_copy(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """A copy of ``model`` with its floating-point weights and buffers in ``dtype``.

    The caller's model is untouched. A frozen text encoder attached to a prompt bank (kept
    outside the module tree) is shared, not copied: prompts are encoded before the call.
    For a model that :func:`load_model` loaded, the copy is kept for the next call while
    the model's state (:func:`_tensor_state`) is unchanged: copying costs ~0.05 s for
    ``nalsuper_ms``, a third of a 0.25 MP call. A caller's own module is copied each call
    (it may be edited in ways no state check sees, e.g. through ``.data``). The copy is
    only read (no-grad forwards), so threads share it.
    """
    reuse = model in _LOADED
    state = _tensor_state(model, dtype) if reuse else ()
    with _HALF_COPIES_LOCK:
        cached = _HALF_COPIES.get(model) if reuse else None
    if cached is not None and cached[0] == state:
        return cached[1]
    memo: dict[int, Any] = {}
    bank = getattr(model, "prompt_bank", None)
    frozen = getattr(bank, "__dict__", {}).get("_frozen")
    if frozen is not None:
        memo[id(frozen)] = frozen
    half = copy.deepcopy(model, memo).to(dtype)
    if reuse:
        with _HALF_COPIES_LOCK:
            _HALF_COPIES[model] = (state, half)
    return half


def _pad(x: Tensor, multiple: int) -> tuple[Tensor, int, int]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, h, w
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), h, w


def _forward(model: nn.Module, x: Tensor, prompt: str | None, dtype: torch.dtype) -> Tensor:
    multiple = int(getattr(model, "pad_multiple", 1) or 1)
    xp, h, w = _pad(x.to(dtype), multiple)
    out = model(xp, prompt) if prompt is not None else model(xp)
    return out[..., :h, :w].float()


def _iter_batches(items: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _progress_bar(total: int, progress: bool | None) -> Any:
    """A tqdm bar over ``total`` tiles on stderr: shown after 2 s (``None``: on a terminal)."""
    import sys

    from tqdm import tqdm

    disable = None if progress is None else not progress
    return tqdm(
        total=total, desc="tiles", unit="tile", delay=2.0, leave=False, file=sys.stderr,
        disable=disable,
    )  # fmt: skip


# -- where the pixels come from and go to ------------------------------------------------
class _Pixels(abc.ABC):
    """The images of one call, read as float32 tiles and written back as finished rows.

    The caller's buffer stays in its own dtype (8-bit photos: 3 bytes per pixel) and the
    output is allocated in the same kind; float32 exists only for the tiles in flight and
    the band of rows still receiving tiles, so a tiled call never holds an image-sized
    float buffer.
    """

    count: int
    height: int
    width: int
    device: torch.device
    out: Any  #: the result, in the caller's kind

    @abc.abstractmethod
    def __init__(self, image: Any, device: torch.device) -> None: ...

    @abc.abstractmethod
    def read(self, b: int, y0: int, y1: int, x0: int, x1: int) -> Tensor:
        """Image ``b``'s rows ``y0:y1``, columns ``x0:x1`` as (3, h, w) float32 on the device."""

    @abc.abstractmethod
    def write(self, b: int, y0: int, rows: Tensor) -> None:
        """Store image ``b``'s finished output rows ``y0:y0 + k`` given as (3, k, W) floats."""

    @property
    def output_bytes(self) -> int:
        """Bytes of the output buffer this call allocated."""
        if isinstance(self.out, np.ndarray):
            return int(self.out.nbytes)
        return int(self.out.numel() * self.out.element_size())


class _ArrayPixels(_Pixels):
    """An (H, W, C) uint8 / uint16 / float array, C in 1 (grey), 3, 4 (alpha carried)."""

    def __init__(self, arr: np.ndarray, device: torch.device) -> None:
        from .data.image_io import to_float

        self.arr, self.device = arr, device
        self.count, (self.height, self.width, self.channels) = 1, arr.shape
        self.integer = arr.dtype in (np.uint8, np.uint16)
        self.out = np.empty(arr.shape, arr.dtype)
        self._to_float = to_float

    def read(self, b: int, y0: int, y1: int, x0: int, x1: int) -> Tensor:
        part = self._to_float(np.ascontiguousarray(self.arr[y0:y1, x0:x1, :3]))
        t = torch.from_numpy(part).permute(2, 0, 1).to(self.device, torch.float32)
        return t.expand(3, -1, -1) if self.channels == 1 else t

    def write(self, b: int, y0: int, rows: Tensor) -> None:
        from .data.image_io import quantize

        k = rows.shape[1]
        out = rows.clamp_(0.0, 1.0).permute(1, 2, 0).float().cpu().numpy()
        if self.channels == 1:
            out = out.mean(axis=2, keepdims=True)
        elif self.channels == 4:
            alpha = self._to_float(np.ascontiguousarray(self.arr[y0 : y0 + k, :, 3:]))
            out = np.concatenate([out, np.clip(alpha, 0.0, 1.0)], axis=2)
        dst = self.out[y0 : y0 + k]
        dst[...] = quantize(out, self.arr.dtype) if self.integer else out


class _TensorPixels(_Pixels):
    """A (B, 3, H, W) float or uint8 tensor on any device."""

    def __init__(self, t: Tensor, device: torch.device) -> None:
        self.t, self.device = t, device
        self.count, _, self.height, self.width = t.shape
        self.out = torch.empty_like(t)

    def read(self, b: int, y0: int, y1: int, x0: int, x1: int) -> Tensor:
        part = self.t[b, :, y0:y1, x0:x1].to(self.device, torch.float32)
        return part / 255.0 if self.t.dtype == torch.uint8 else part

    def write(self, b: int, y0: int, rows: Tensor) -> None:
        from .data.image_io import quantize

        rows = rows.clamp_(0.0, 1.0)
        if self.t.dtype == torch.uint8:
            rows = cast(Tensor, quantize(rows, np.uint8))
        self.out[b, :, y0 : y0 + rows.shape[1]] = rows.to(self.out.device, self.out.dtype)


class _RowBand:
    """The blended output rows ``[lo, lo + rows)`` of one image that tiles still reach.

    Tiles are added in row-major order; once no pending tile starts above row ``r``, the
    rows above ``r`` are final and leave the band (:meth:`flush`), so a tiled image holds
    about two tile rows of float sums instead of the whole image.
    """

    def __init__(self, channels: int, width: int, device: torch.device) -> None:
        self.lo = 0
        self.acc = torch.zeros(channels, 0, width, device=device)
        self.norm = torch.zeros(1, 0, width, device=device)

    def add(self, y: int, x: int, result: Tensor, weight: Tensor) -> None:
        th, tw = result.shape[-2:]
        missing = y + th - (self.lo + self.acc.shape[1])
        if missing > 0:
            self.acc = torch.cat([self.acc, self.acc.new_zeros(self.acc.shape[0], missing, self.acc.shape[2])], 1)  # fmt: skip
            self.norm = torch.cat([self.norm, self.norm.new_zeros(1, missing, self.norm.shape[2])], 1)  # fmt: skip
        r = y - self.lo
        self.acc[:, r : r + th, x : x + tw] += result * weight
        self.norm[:, r : r + th, x : x + tw] += weight

    def flush(self, upto: int) -> Tensor | None:
        """The finished rows ``[lo, upto)`` (normalised blend), removed from the band."""
        k = upto - self.lo
        if k <= 0:
            return None
        rows = self.acc[:, :k] / self.norm[:, :k]
        self.acc, self.norm, self.lo = self.acc[:, k:], self.norm[:, k:], upto
        return rows


def _context_image(pix: _Pixels, b: int, pixels: int) -> Tensor:
    """Image ``b`` downscaled (antialiased) to about ``pixels`` pixels, read in strips.

    A box filter of the integer factor ``k = floor(1/scale)`` is applied strip by strip,
    then an antialiased bilinear resize covers the remaining factor (< 2): an image is
    never held at full resolution in float32 unless it is under 4x ``pixels``.
    """
    h, w = pix.height, pix.width
    scale = min(1.0, math.sqrt(pixels / (h * w)))
    if scale == 1.0:
        return pix.read(b, 0, h, 0, w)[None]
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    k = max(1, int(1.0 / scale))
    strip = k * max(1, 256 // k)
    parts = [
        F.avg_pool2d(pix.read(b, y, min(y + strip, h), 0, w)[None], k, ceil_mode=True)
        for y in range(0, h, strip)
    ]
    reduced = torch.cat(parts, 2) if len(parts) > 1 else parts[0]
    return F.interpolate(reduced, size=size, mode="bilinear", antialias=True)


def _run_whole(
    model: nn.Module, pix: _Pixels, prompt: str | None, batch: int, dtype: torch.dtype
) -> None:
    """Whole images, ``batch`` per forward."""
    h, w = pix.height, pix.width
    for group in _iter_batches(list(range(pix.count)), batch):
        x = torch.stack([pix.read(b, 0, h, 0, w) for b in group])
        out = _forward(model, x, prompt, dtype)
        del x
        for b, o in zip(group, out):
            pix.write(b, 0, o)


def _run_tiled(
    model: nn.Module,
    pix: _Pixels,
    prompt: str | None,
    tile: int,
    overlap: int,
    tile_batch: int,
    dtype: torch.dtype,
    context: bool = True,
    progress: bool | None = None,
) -> None:
    """Overlapping tiles, raised-cosine blended, finished rows written as they complete."""
    h, w = pix.height, pix.width
    th, tw = min(tile, h), min(tile, w)
    ys, xs = plan_tiles(h, th, overlap), plan_tiles(w, tw, overlap)
    wy = tile_window(th, overlap if len(ys) > 1 else 0).to(pix.device)
    wx = tile_window(tw, overlap if len(xs) > 1 else 0).to(pix.device)
    weight = wy[:, None] * wx[None, :]
    from .layers import GlobalStatistics

    stats = GlobalStatistics() if context and _has_global_statistics(model) else None
    coords = [(y, xx) for y in ys for xx in xs]
    batches = list(_iter_batches(coords, tile_batch))
    with _progress_bar(len(coords) * pix.count, progress) as bar:
        for b in range(pix.count):
            use: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
            if stats is not None:
                # context pass: the image at most as large as one batch of tiles
                with stats.recording():
                    _forward(model, _context_image(pix, b, tile_batch * th * tw), prompt, dtype)
                use = stats.applied()
            band = _RowBand(3, w, pix.device)
            with use:
                for i, batch in enumerate(batches):
                    tiles = torch.stack([pix.read(b, y, y + th, xx, xx + tw) for y, xx in batch])
                    res = _forward(model, tiles, prompt, dtype)
                    del tiles
                    for (y, xx), r in zip(batch, res):
                        band.add(y, xx, r, weight)
                    upto = batches[i + 1][0][0] if i + 1 < len(batches) else h
                    rows = band.flush(upto)
                    if rows is not None:
                        pix.write(b, band.lo - rows.shape[1], rows)
                    bar.update(len(batch))


@torch.no_grad()
def _enhance_pixels(
    model: nn.Module,
    pix: _Pixels,
    prompt: str | None,
    tile: int | str | None,
    overlap: int,
    amp: bool | None,
    tile_batch: int,
    memory_budget: int | None,
    context: bool = True,
    progress: bool | None = None,
) -> None:
    """Enhance every image of ``pix`` into its output buffer (whole or tiled)."""
    device = pix.device
    h, w = pix.height, pix.width
    half = _half_dtype(model, device, amp)
    dtype = half or torch.float32
    if half is not None:
        model = _half_copy(model, half)
    if tile is None or tile == "auto":
        budget = _activation_budget(device, memory_budget, pix.output_bytes)
        cap = _forward_pixels(model, dtype) if device.type == "cpu" else None
        tile, tile_batch = _auto_plan(model, h, w, budget, tile_batch, overlap, dtype, cap)
    elif tile == "whole":
        tile = None
    tile = cast("int | None", tile)  # "auto"/"whole" resolved above; the rest checked in enhance()
    if tile is None or (tile >= h and tile >= w):
        _run_whole(model, pix, prompt, tile_batch, dtype)
    else:
        _run_tiled(model, pix, prompt, int(tile), overlap, tile_batch, dtype, context, progress)


def _check_args(
    tile: object,
    overlap: object,
    tile_batch: object,
    memory_budget: object = None,
    bad_values: object = "raise",
) -> None:
    """Check ``enhance``'s options (ValueError/TypeError naming the option)."""
    if not (
        tile is None
        or tile in ("auto", "whole")
        or (isinstance(tile, int) and not isinstance(tile, bool))
    ):
        raise TypeError(f"enhance: tile must be None, 'auto', 'whole' or an int, got {tile!r}")
    if isinstance(tile, int) and tile < 8:
        raise ValueError(f"enhance: tile must be >= 8 pixels, got {tile}")
    if not isinstance(overlap, int) or isinstance(overlap, bool) or overlap < 0:
        raise ValueError(f"enhance: overlap must be an int >= 0, got {overlap!r}")
    if isinstance(tile, int) and overlap >= tile:
        raise ValueError(f"enhance: overlap ({overlap}) must be smaller than tile ({tile})")
    if not isinstance(tile_batch, int) or isinstance(tile_batch, bool) or tile_batch < 1:
        raise ValueError(f"enhance: tile_batch must be an int >= 1, got {tile_batch!r}")
    if memory_budget is not None and (
        not isinstance(memory_budget, int) or isinstance(memory_budget, bool) or memory_budget < 1
    ):
        raise ValueError(
            f"enhance: memory_budget must be a number of bytes > 0, got {memory_budget!r}"
        )
    if bad_values not in _BAD_VALUES:
        raise ValueError(f"enhance: bad_values must be 'raise' or 'repair', got {bad_values!r}")


def _check_values(t: Tensor, bad_values: str) -> Tensor:
    """Name NaN/Inf values and floats far outside [0, 1]; ``"repair"`` fixes and warns.

    Returns ``t`` itself when it is fine, else (``"repair"``) a repaired copy.
    """
    if t.numel() == 0:
        return t
    fixed: list[str] = []
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        n_bad = int(finite.numel() - int(finite.sum()))
        if bad_values == "raise":
            raise ValueError(
                f"enhance: the image has {n_bad} NaN or infinite value(s) of {t.numel()}; "
                "fix the input, or pass bad_values='repair' to replace NaN by 0, +Inf by 1 "
                "and -Inf by 0"
            )
        t = torch.nan_to_num(t, nan=0.0, posinf=1.0, neginf=0.0)
        fixed.append(f"replaced {n_bad} NaN/Inf value(s)")
    del finite
    lo, hi = (float(v) for v in torch.aminmax(t))
    if lo < -FLOAT_RANGE_SLACK or hi > 1.0 + FLOAT_RANGE_SLACK:
        if bad_values == "raise":
            hint = " (an 8-bit image as floats? divide by 255)" if hi > 2.0 else ""
            raise ValueError(
                f"enhance: float image values span [{lo:.4g}, {hi:.4g}], expected [0, 1]{hint}; "
                "pass bad_values='repair' to clip them"
            )
        n_out = int(((t < 0) | (t > 1)).sum())
        t = t.clamp(0.0, 1.0)
        fixed.append(f"clipped {n_out} value(s) outside [0, 1] (they spanned [{lo:.4g}, {hi:.4g}])")
    if fixed:
        warnings.warn("enhance: " + "; ".join(fixed), BadValuesWarning, stacklevel=4)
    return t


def _enhance_array(arr: np.ndarray, run: Any, bad_values: str = "raise") -> np.ndarray:
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
    if arr.dtype not in (np.uint8, np.uint16):
        if not np.issubdtype(arr.dtype, np.floating):
            raise TypeError(
                f"enhance: expected a uint8, uint16 or float image array, got dtype {arr.dtype}"
            )
        if arr3.dtype not in (np.float16, np.float32, np.float64) or not arr3.dtype.isnative:
            arr3 = arr3.astype(np.float32)
        with warnings.catch_warnings():  # read-only (e.g. PIL's) arrays: only read here
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            checked = torch.from_numpy(np.ascontiguousarray(arr3))
        arr3 = _check_values(checked, bad_values).numpy()
    out: np.ndarray = run(_ArrayPixels, arr3)
    return out.reshape(arr.shape)


def _enhance_pil(im: Any, run: Any, bad_values: str = "raise") -> Any:
    """PIL modes: RGB, L, RGBA, LA (alpha kept), F (floats in [0, 1]) and 16-bit modes keep
    their mode; P/PA become RGB/RGBA, CMYK and YCbCr are converted back, 1 becomes L."""
    from PIL import Image

    from .data.image_io import pil_to_array

    mode = im.mode
    if mode in ("RGB", "L", "RGBA", "F", "I;16", "I;16B", "I;16L", "I;16N", "I"):
        return Image.fromarray(_enhance_array(pil_to_array(im), run, bad_values))
    if mode in ("LA", "La"):
        la = np.asarray(im.convert("LA"))
        grey = _enhance_array(np.ascontiguousarray(la[..., 0]), run)
        return Image.fromarray(np.stack([grey, la[..., 1]], axis=2))
    if mode in ("CMYK", "YCbCr"):
        return _enhance_pil(im.convert("RGB"), run).convert(mode)
    if mode == "1":
        return _enhance_pil(im.convert("L"), run)
    alpha = mode in ("PA", "RGBa") or "transparency" in im.info
    return _enhance_pil(im.convert("RGBA" if alpha else "RGB"), run)


def _enhance_torch(t: Tensor, run: Any, bad_values: str = "raise") -> Tensor:
    if t.ndim not in (3, 4) or t.shape[-3] != 3:
        raise ValueError(
            f"enhance: expected a tensor of shape (3, H, W) or (B, 3, H, W), got {tuple(t.shape)}"
        )
    if min(t.shape) < 1:
        raise ValueError(f"enhance: every dimension must be >= 1, got {tuple(t.shape)}")
    if not (t.dtype == torch.uint8 or torch.is_floating_point(t)):
        raise TypeError(f"enhance: expected a float or uint8 tensor, got dtype {t.dtype}")
    batch = t if t.ndim == 4 else t[None]
    if t.dtype != torch.uint8:
        batch = _check_values(batch, bad_values)
    out: Tensor = run(_TensorPixels, batch)
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
    bad_values: str = "raise",
    progress: bool | None = None,
) -> Any:
    """Enhance a low-light image with a text-guided model, of any size.

    By default the call picks whole-image or tiled inference itself, from the image size,
    the model's memory per pixel (:func:`bytes_per_pixel`) and the memory that is free:
    an image of any size runs without a ``tile`` argument. On the CPU, glibc keeps freed
    memory in its heap for the duration of the call, so the model's large buffers are not
    page-faulted afresh in every block; the free heap is returned to the system
    :data:`HEAP_LINGER_S` seconds after the call unless another call starts first, which
    then reuses it (:func:`textrestore.allocator.freed_memory_kept`).

    Args:
        image: a path to an image file, a ``PIL.Image``, a NumPy array (H, W, 3) (also
            (H, W), (H, W, 1), (H, W, 4): alpha kept) of dtype uint8, uint16 or float in
            [0, 1], or a tensor (3, H, W) / (B, 3, H, W), float in [0, 1] or uint8.
        model: ``None`` for the shipped ``nalsuper_ms`` checkpoint, a module, a preset
            name with shipped weights, or a weights file (see :func:`load_model`).
        prompt: the text prompt (default: the model's default prompt). A prompt the
            model's bank does not hold is encoded by the model's text encoder.
        tile: ``None`` or ``"auto"`` (default: the whole image when it fits the memory
            budget, else the largest tiles that do, never below 256 px: a tight budget
            runs fewer tiles per forward), ``"whole"`` (never tile), or a tile side in
            pixels (>= 8).
        overlap: overlap of neighbouring tiles in pixels; raised-cosine blending.
        device: ``"auto"`` (a module you pass: its own device; otherwise CUDA when
            available), ``"cpu"``, ``"cuda"`` or a device. A module you pass is left as it
            was: moved for the call if ``device`` differs, and moved back (same parameter
            objects), its train/eval mode restored.
        amp: reduced precision: the forward runs on a bfloat16 copy of the model (float16
            on GPUs without bfloat16), so the memory-lean inference path still applies and
            the caller's model is untouched; outputs differ from float32 by about 55 dB
            PSNR (below 8-bit rounding). ``None`` (default): on for CUDA, and on CPU for
            this library's models when the CPU computes bfloat16 natively
            (:func:`native_bf16_cpu`: AVX512-BF16 or AMX, about 1.4x faster); ``False``:
            float32 everywhere; ``True``: bfloat16 on CPU too.
        tile_batch: tiles per forward (at most; the automatic choice may run fewer); for
            a (B, 3, H, W) batch run whole, images per forward.
        memory_budget: bytes for the automatic choice. On CPU the bound on the process's
            resident memory during the call: what the process already holds (torch, the
            model) and the image-sized buffers count against it. Default on CPU: 1.5 GiB
            of activations, at most half the memory the system has available. On CUDA the
            bound on activation memory (default: half the free memory).
        context: when tiling, give every tile the global statistics (channel-attention
            gates, cross-layer affinities) of a context pass over the whole image
            downscaled to the size of one batch of tiles; ``False`` lets each tile use
            its own.
        bad_values: float inputs with NaN/Inf values or values further than 0.1 outside
            [0, 1]: ``"raise"`` (default) raises a ``ValueError`` naming them; ``"repair"``
            replaces NaN by 0 and ±Inf by 1/0, clips to [0, 1] and warns
            (:class:`BadValuesWarning`) with the counts.
        progress: a progress bar over the tiles (stderr) for tiled runs that take more
            than 2 seconds; ``None``: only when stderr is a terminal.

    Returns:
        The same kind as ``image``: a PIL image for a PIL input, an array of the input's
        shape and dtype, or a tensor of the input's shape, dtype and device. For a path:
        an RGB PIL image for an 8-bit file, an (H, W, 3) ``uint16`` array for a 16-bit one
        (PIL has no 16-bit colour mode) — the pixels ``textrestore enhance`` writes.
        Values are clipped to [0, 1] (the full range for integer types); integers are
        rounded by :func:`textrestore.data.image_io.quantize`.

    Raises:
        FileNotFoundError: ``image`` is a path that does not exist.
        TypeError: an unsupported input kind or dtype.
        ValueError: a bad shape, argument, device, or NaN/Inf/out-of-range values.

    Example:
        >>> import torch
        >>> from textrestore import create_model
        >>> m = create_model("nalsuper_t", text_dim=8)
        >>> m.prompt_bank.add("normal light image", _toy_embedding(8))
        >>> enhance(torch.rand(3, 40, 50), model=m, tile=24, overlap=8, device="cpu").shape
        torch.Size([3, 40, 50])
    """
    _check_args(tile, overlap, tile_batch, memory_budget, bad_values)
    if prompt is not None and not isinstance(prompt, str):
        raise TypeError(f"enhance: prompt must be a str or None, got {type(prompt).__name__}")
    dev = _resolve_device(device)  # checked before any loading
    net = load_model(model)
    first = next(iter(net.parameters()), None)
    own_device = None if first is None else first.device
    callers = isinstance(model, nn.Module)
    if isinstance(device, str) and device == "auto" and callers and own_device is not None:
        dev = own_device  # the caller's module stays where it is
    _ensure_prompt(net, prompt)
    was_training = net.training
    net.eval()
    try:
        if own_device is not None and own_device != dev:
            net.to(dev)  # the caller's module goes back in ``finally``; a cached one stays

        def run(kind: type[_Pixels], image: Any) -> Any:
            pix = kind(image, dev)
            # glibc keeps freed blocks for the call (no page faults per block); the free
            # heap goes back to the system unless a call follows: see textrestore.allocator.
            with freed_memory_kept(dev.type == "cpu", linger=HEAP_LINGER_S):
                _enhance_pixels(
                    net, pix, prompt, tile, overlap, amp, tile_batch, memory_budget, context,
                    progress,
                )  # fmt: skip
            return pix.out

        if isinstance(image, (str, os.PathLike)):
            from PIL import Image

            from .data import read_image_array

            out = _enhance_array(read_image_array(image), run)
            return out if out.dtype == np.uint16 else Image.fromarray(out)
        if isinstance(image, Tensor):
            return _enhance_torch(image, run, bad_values)
        if isinstance(image, np.ndarray):
            return _enhance_array(image, run, bad_values)
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover
            Image = None  # type: ignore[assignment]
        if Image is not None and isinstance(image, Image.Image):
            return _enhance_pil(image, run, bad_values)
        raise TypeError(
            "enhance: expected a path, PIL.Image, numpy array or torch.Tensor, "
            f"got {type(image).__name__}"
        )
    finally:
        net.train(was_training)
        if callers and own_device is not None and own_device != dev:
            net.to(own_device)

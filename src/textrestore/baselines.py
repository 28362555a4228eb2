"""Classical low-light baselines: a fixed gamma curve and CLAHE.

- :func:`gamma_correct`: a fixed gamma curve ``x ** gamma`` (0.4 by default).
- :func:`clahe`: contrast-limited adaptive histogram equalisation of the HSV value
  channel, a small NumPy port of ``skimage.exposure.equalize_adapthist`` (same tiling,
  clip limit and bilinear interpolation of the tile mappings), so that the demo needs no
  scikit-image and no OpenCV at run time.

Both take float tensors (B, 3, H, W) or (3, H, W) in [0, 1] and return the same shape.
The low-light inputs they are compared on come from the one degradation model,
:func:`textrestore.data.degradation.degrade`.

Example:
    >>> import torch
    >>> from textrestore.data.degradation import degrade
    >>> low, _ = degrade(torch.rand(1, 3, 16, 20), seeds=[0])
    >>> gamma_correct(low).shape, clahe(low).shape
    (torch.Size([1, 3, 16, 20]), torch.Size([1, 3, 16, 20]))
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ._checks import check_floating, check_tensor

__all__ = ["gamma_correct", "clahe", "clahe_numpy"]


def _as_batch(x: object, name: str) -> tuple[Tensor, bool]:
    t = check_floating(check_tensor(x, name), name)
    if t.ndim == 3:
        t, single = t.unsqueeze(0), True
    elif t.ndim == 4:
        single = False
    else:
        raise ValueError(f"{name}: expected (3, H, W) or (B, 3, H, W), got shape {tuple(t.shape)}")
    if t.shape[1] != 3:
        raise ValueError(f"{name}: expected 3 channels, got shape {tuple(t.shape)}")
    return t, single


def gamma_correct(image: Tensor, gamma: float = 0.4) -> Tensor:
    """Fixed gamma curve ``clip(x, 0, 1) ** gamma``.

    Args:
        image: (B, 3, H, W) or (3, H, W) float in [0, 1].
        gamma: exponent; < 1 brightens.

    Returns:
        Tensor of the input's shape in [0, 1].

    Example:
        >>> import torch
        >>> gamma_correct(torch.tensor([[[0.25]]] * 3), gamma=0.5).flatten().tolist()
        [0.5, 0.5, 0.5]
    """
    x, _ = _as_batch(image, "gamma_correct image")
    if not gamma > 0:
        raise ValueError(f"gamma_correct: gamma must be > 0, got {gamma}")
    return image.clamp(0, 1) ** gamma


def clahe_numpy(
    value: np.ndarray, kernel_size: int | None = None, clip_limit: float = 0.01, nbins: int = 256
) -> np.ndarray:
    """CLAHE of one 2-D float image in [0, 1] (the algorithm of skimage's equalize_adapthist).

    The image is padded (reflect) to a whole number of tiles of ``kernel_size`` (1/8 of
    each side by default), each tile's histogram is clipped at ``clip_limit`` of its
    pixel count (the excess redistributed evenly) and turned into a mapping, and every
    pixel is mapped by bilinear interpolation between its four nearest tile mappings.

    Args:
        value: (H, W) float array in [0, 1].
        kernel_size: tile size in pixels; default ``max(H // 8, W // 8 ...)`` per axis.
        clip_limit: normalised clip limit (0.01 as skimage's default).
        nbins: histogram bins.

    Returns:
        (H, W) float64 array in [0, 1].
    """
    if value.ndim != 2:
        raise ValueError(f"clahe_numpy: expected a 2-D array, got shape {value.shape}")
    h, w = value.shape
    ks = (
        (max(h // 8, 1), max(w // 8, 1))
        if kernel_size is None
        else (int(kernel_size), int(kernel_size))
    )
    v = np.clip(value, 0, 1).astype(np.float64)
    lo, hi = float(v.min()), float(v.max())
    v = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)  # stretch as skimage does
    img = np.minimum((v * nbins).astype(np.int64), nbins - 1)
    # pad so that tiles cover the image, centred as skimage does
    pad_h = (-h) % ks[0] + ks[0]
    pad_w = (-w) % ks[1] + ks[1]
    top, left = ks[0] // 2, ks[1] // 2
    img = np.pad(img, ((top, pad_h - top), (left, pad_w - left)), mode="reflect")
    nh, nw = img.shape[0] // ks[0], img.shape[1] // ks[1]
    tiles = img.reshape(nh, ks[0], nw, ks[1]).transpose(0, 2, 1, 3).reshape(nh, nw, -1)
    hist = np.zeros((nh, nw, nbins), dtype=np.float64)
    idx = tiles + np.arange(nh * nw).reshape(nh, nw, 1) * nbins
    hist = np.bincount(idx.ravel(), minlength=nh * nw * nbins).reshape(nh, nw, nbins)
    hist = hist.astype(np.float64)
    npix = ks[0] * ks[1]
    if clip_limit > 0:
        limit = float(max(int(clip_limit * npix), 1))
        excess = np.clip(hist - limit, 0, None).sum(-1, keepdims=True)
        hist = np.minimum(hist, limit) + excess / nbins
    cdf = np.cumsum(hist, -1)
    maps = cdf / npix  # (nh, nw, nbins) in [0, 1]
    # bilinear interpolation between tile centres, in padded coordinates
    ys = np.arange(h) + top
    xs = np.arange(w) + left
    fy = (ys + 0.5) / ks[0] - 0.5
    fx = (xs + 0.5) / ks[1] - 0.5
    y0 = np.clip(np.floor(fy).astype(int), 0, nh - 1)
    x0 = np.clip(np.floor(fx).astype(int), 0, nw - 1)
    y1, x1 = np.clip(y0 + 1, 0, nh - 1), np.clip(x0 + 1, 0, nw - 1)
    wy = np.clip(fy - y0, 0, 1)[:, None]
    wx = np.clip(fx - x0, 0, 1)[None, :]
    v = img[top : top + h, left : left + w]
    yy0, yy1 = y0[:, None], y1[:, None]
    xx0, xx1 = x0[None, :], x1[None, :]
    out = (1 - wy) * ((1 - wx) * maps[yy0, xx0, v] + wx * maps[yy0, xx1, v]) + wy * (
        (1 - wx) * maps[yy1, xx0, v] + wx * maps[yy1, xx1, v]
    )
    lo, hi = float(out.min()), float(out.max())
    out = (out - lo) / (hi - lo) if hi > lo else out  # final stretch, as skimage does
    return np.clip(out, 0, 1)


def clahe(image: Tensor, clip_limit: float = 0.01, kernel_size: int | None = None) -> Tensor:
    """CLAHE on the HSV value channel, hue and saturation kept (as skimage does for RGB).

    A pure NumPy implementation (:func:`clahe_numpy`): no scikit-image or OpenCV needed.

    Args:
        image: (B, 3, H, W) or (3, H, W) float in [0, 1].
        clip_limit: normalised clip limit.
        kernel_size: tile size; default 1/8 of each side.

    Returns:
        Tensor of the input's shape, dtype and device, in [0, 1].
    """
    x, single = _as_batch(image, "clahe image")
    arr = x.detach().clamp(0, 1).double().cpu().numpy()
    out = np.empty_like(arr)
    for i, rgb in enumerate(arr):
        v = rgb.max(0)
        new_v = clahe_numpy(v, kernel_size, clip_limit)
        # scaling RGB by new_v / v keeps hue and saturation of HSV
        ratio = np.where(v > 1e-8, new_v / np.maximum(v, 1e-8), 0.0)
        scaled = rgb * ratio[None]
        scaled[:, v <= 1e-8] = new_v[v <= 1e-8]
        out[i] = np.clip(scaled, 0, 1)
    res = torch.from_numpy(out).to(device=x.device, dtype=x.dtype)
    return res[0] if single else res

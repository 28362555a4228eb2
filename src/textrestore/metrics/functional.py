"""Full-reference image metrics: PSNR, SSIM, MS-SSIM, MAE, Y channel and GT-mean.

All functions take ``pred`` and ``target`` as float tensors of shape (B, C, H, W) or
(C, H, W) with values in ``[0, data_range]`` (``data_range=1`` by default). They return
one value per image, shape (B,), or a 0-d tensor for a (C, H, W) input; pass
``reduction="mean"`` or ``"sum"`` to reduce over the batch.

Input checks (metrics only; the losses skip the value checks): different shapes, NaN or
infinite values, and values outside ``[0, data_range]`` by more than ``1e-3 * data_range``
raise ``ValueError``. Values outside the range by less than that (rounding) are clipped.

SSIM follows Wang et al. (2004) and ``skimage.metrics.structural_similarity`` with
``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``: an 11x11 Gaussian
window (sigma 1.5), ``K1=0.01``, ``K2=0.03``, population (co)variances, the SSIM map kept
only where the window lies inside the image ("valid", the border of 5 pixels is
dropped, as in the authors' MATLAB code, skimage and BasicSR) and averaged over pixels and
channels. ``padding="reflect"`` instead pads the image by reflection and averages the full
map, which is what ``torchmetrics`` >= 1.6 returns.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from textrestore._checks import check_floating, check_tensor

__all__ = [
    "psnr",
    "ssim",
    "ms_ssim",
    "mae",
    "rgb_to_y",
    "rgb_to_gray",
    "gt_mean_align",
    "ssim_per_image",
    "ms_ssim_per_image",
    "MS_SSIM_BETAS",
]

Reduction = Literal["none", "mean", "sum"]
Padding = Literal["valid", "reflect"]

#: Exponents of the five MS-SSIM scales (Wang, Simoncelli & Bovik, 2003).
MS_SSIM_BETAS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

# ITU-R BT.601 luma, as BasicSR's ``rgb2ycbcr(y_only=True)`` (studio swing, 16..235).
_Y_WEIGHTS = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)
_Y_OFFSET = 16.0 / 255.0
# BT.601 grey as OpenCV's RGB2GRAY, used by the GT-mean protocol (LLFlow, Retinexformer).
_GRAY_WEIGHTS = (0.299, 0.587, 0.114)

_RANGE_TOL = 1e-3


# --------------------------------------------------------------------------- checks


def _check_pair(
    pred: object,
    target: object,
    data_range: float,
    *,
    check_values: bool = True,
    name: str = "metric",
) -> tuple[Tensor, Tensor, bool]:
    """Validate a (pred, target) pair; return 4-D tensors and whether the input was 3-D."""
    p = check_floating(check_tensor(pred, "pred"), "pred")
    t = check_floating(check_tensor(target, "target"), "target")
    if p.ndim not in (3, 4):
        raise ValueError(
            f"{name}: expected pred of shape (B, C, H, W) or (C, H, W), got {tuple(p.shape)}"
        )
    if p.shape != t.shape:
        raise ValueError(
            f"{name}: pred and target must have the same shape, got pred {tuple(p.shape)} "
            f"and target {tuple(t.shape)}"
        )
    if min(p.shape) < 1:
        raise ValueError(f"{name}: every dimension must be >= 1, got shape {tuple(p.shape)}")
    if p.device != t.device:
        raise ValueError(f"{name}: pred is on {p.device} but target is on {t.device}")
    if not isinstance(data_range, (int, float)) or isinstance(data_range, bool):
        raise TypeError(f"{name}: data_range must be a number, got {type(data_range).__name__}")
    if not data_range > 0:
        raise ValueError(f"{name}: data_range must be > 0, got {data_range}")
    single = p.ndim == 3
    if single:
        p, t = p.unsqueeze(0), t.unsqueeze(0)
    if check_values:
        p = _check_values(p, "pred", data_range, name)
        t = _check_values(t, "target", data_range, name)
    return p, t, single


def _check_values(x: Tensor, label: str, data_range: float, name: str) -> Tensor:
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name}: {label} contains NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    tol = _RANGE_TOL * data_range
    if lo < -tol or hi > data_range + tol:
        raise ValueError(
            f"{name}: {label} must have values in [0, {data_range:g}] (data_range), got "
            f"values in [{lo:.4g}, {hi:.4g}]; clamp the output first (x.clamp(0, {data_range:g})) "
            f"or pass the right data_range"
        )
    if lo < 0 or hi > data_range:
        x = x.clamp(0.0, data_range)
    return x


def _reduce(values: Tensor, reduction: str, single: bool) -> Tensor:
    if reduction == "none":
        return values[0] if single else values
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def _compute_dtype(x: Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


# --------------------------------------------------------------------------- colour


def rgb_to_y(x: Tensor, data_range: float = 1.0) -> Tensor:
    """Luma Y of ITU-R BT.601 (studio swing), as BasicSR's ``rgb2ycbcr(..., y_only=True)``.

    ``Y = (65.481 R + 128.553 G + 24.966 B) / 255 + 16/255 * data_range``, so an image in
    ``[0, 1]`` maps to ``[16/255, 235/255]``.

    Args:
        x: RGB image(s) in ``[0, data_range]``.
        data_range: value of full white.

    Returns:
        The Y channel with a channel dimension of size 1.

    Shape:
        - x: (B, 3, H, W) or (3, H, W)
        - output: (B, 1, H, W) or (1, H, W)

    Example:
        >>> y = rgb_to_y(torch.ones(1, 3, 2, 2))
        >>> round(y.max().item() * 255, 3)
        235.0
    """
    x = check_floating(check_tensor(x, "x"), "x")
    if x.ndim not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(f"rgb_to_y: expected (B, 3, H, W) or (3, H, W), got {tuple(x.shape)}")
    w = torch.tensor(_Y_WEIGHTS, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x * w).sum(dim=-3, keepdim=True) + _Y_OFFSET * data_range


def rgb_to_gray(x: Tensor) -> Tensor:
    """BT.601 grey ``0.299 R + 0.587 G + 0.114 B`` (OpenCV's ``COLOR_RGB2GRAY``).

    Images with a channel count other than 3 are averaged over channels.

    Args:
        x: image(s) with channels at dim -3.

    Returns:
        The grey image with one channel.

    Shape:
        - x: (B, C, H, W) or (C, H, W)
        - output: (B, 1, H, W) or (1, H, W)

    Example:
        >>> rgb_to_gray(torch.ones(3, 1, 1)).item()
        1.0
    """
    x = check_floating(check_tensor(x, "x"), "x")
    if x.ndim not in (3, 4):
        raise ValueError(f"rgb_to_gray: expected (B, C, H, W) or (C, H, W), got {tuple(x.shape)}")
    if x.shape[-3] != 3:
        return x.mean(dim=-3, keepdim=True)
    w = torch.tensor(_GRAY_WEIGHTS, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x * w).sum(dim=-3, keepdim=True)


def gt_mean_align(
    pred: Tensor, target: Tensor, data_range: float = 1.0, eps: float = 1e-12
) -> Tensor:
    """Scale each output so its mean grey equals the reference's, then clip (GT-mean).

    The protocol of the low-light literature (LLFlow, Retinexformer, ...):
    ``pred' = clip(pred * mean(gray(target)) / mean(gray(pred)), 0, data_range)`` per image,
    with BT.601 grey weights (0.299, 0.587, 0.114). It removes the global brightness
    ambiguity of low-light enhancement before the metric is taken.

    Args:
        pred: enhanced image(s) in ``[0, data_range]``.
        target: reference image(s), same shape.
        data_range: value of full white (upper clip bound).
        eps: lower bound of the output's mean grey (an all-black output stays black).

    Returns:
        The rescaled, clipped prediction, same shape as ``pred``.

    Shape:
        - pred, target: (B, C, H, W) or (C, H, W)
        - output: same as pred

    Example:
        >>> target = torch.rand(1, 3, 8, 8)
        >>> out = gt_mean_align(0.5 * target, target)
        >>> torch.allclose(out, target, atol=1e-6)
        True
    """
    p, t, single = _check_pair(pred, target, data_range, check_values=False, name="gt_mean_align")
    mean_p = rgb_to_gray(p).mean(dim=(1, 2, 3), keepdim=True)
    mean_t = rgb_to_gray(t).mean(dim=(1, 2, 3), keepdim=True)
    out = (p * (mean_t / mean_p.clamp_min(eps))).clamp(0.0, data_range)
    return out[0] if single else out


def _prepare(
    pred: object,
    target: object,
    data_range: float,
    y_channel: bool,
    gt_mean: bool,
    name: str,
) -> tuple[Tensor, Tensor, bool]:
    p, t, single = _check_pair(pred, target, data_range, name=name)
    if gt_mean:
        p = gt_mean_align(p, t, data_range)
    if y_channel:
        if p.shape[1] != 3:
            raise ValueError(
                f"{name}: y_channel=True needs RGB input with 3 channels, got {tuple(p.shape)}"
            )
        p, t = rgb_to_y(p, data_range), rgb_to_y(t, data_range)
    return p, t, single


# --------------------------------------------------------------------------- PSNR, MAE


def psnr(
    pred: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    y_channel: bool = False,
    gt_mean: bool = False,
    reduction: Reduction = "none",
) -> Tensor:
    """Peak signal-to-noise ratio ``10 log10(data_range^2 / MSE)`` per image, in dB.

    The MSE is taken over all channels and pixels of each image (as
    ``skimage.metrics.peak_signal_noise_ratio`` and BasicSR). Identical images give ``inf``.
    The value is computed in float64.

    Args:
        pred: restored image(s) in ``[0, data_range]``.
        target: reference image(s), same shape.
        data_range: value of full white.
        y_channel: compare the BT.601 Y channel only (see :func:`rgb_to_y`).
        gt_mean: apply :func:`gt_mean_align` to ``pred`` first.
        reduction: ``"none"`` (per image), ``"mean"`` or ``"sum"`` over the batch.

    Returns:
        PSNR in dB, float64.

    Shape:
        - pred, target: (B, C, H, W) or (C, H, W)
        - output: (B,) (or () for a single image) with ``reduction="none"``, else ()

    Example:
        >>> target = torch.full((1, 3, 4, 4), 0.5)
        >>> psnr(target + 0.1, target)
        tensor([20.0000], dtype=torch.float64)
    """
    p, t, single = _prepare(pred, target, data_range, y_channel, gt_mean, "psnr")
    mse = (p.double() - t.double()).pow(2).flatten(1).mean(dim=1)
    values = 10.0 * torch.log10(float(data_range) ** 2 / mse)
    return _reduce(values, reduction, single)


def mae(
    pred: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    y_channel: bool = False,
    gt_mean: bool = False,
    reduction: Reduction = "none",
) -> Tensor:
    """Mean absolute error ``mean(|pred - target|)`` per image, in the units of ``data_range``.

    With the default ``data_range=1`` the value lies in [0, 1]; multiply by 255 for the
    8-bit scale some papers report.

    Args:
        pred: restored image(s) in ``[0, data_range]``.
        target: reference image(s), same shape.
        data_range: value of full white.
        y_channel: compare the BT.601 Y channel only.
        gt_mean: apply :func:`gt_mean_align` to ``pred`` first.
        reduction: ``"none"`` (per image), ``"mean"`` or ``"sum"`` over the batch.

    Returns:
        MAE, float64.

    Shape:
        - pred, target: (B, C, H, W) or (C, H, W)
        - output: (B,) (or () for a single image) with ``reduction="none"``, else ()

    Example:
        >>> target = torch.zeros(2, 3, 4, 4)
        >>> mae(target + 0.25, target)
        tensor([0.2500, 0.2500], dtype=torch.float64)
    """
    p, t, single = _prepare(pred, target, data_range, y_channel, gt_mean, "mae")
    values = (p.double() - t.double()).abs().flatten(1).mean(dim=1)
    return _reduce(values, reduction, single)


# --------------------------------------------------------------------------- SSIM core


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(coords**2) / (2.0 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _blur(x: Tensor, window: Tensor) -> Tensor:
    """Separable 'valid' Gaussian filter of every channel of ``x`` (N, C, H, W)."""
    c = x.shape[1]
    k = window.numel()
    x = F.conv2d(x, window.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(x, window.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def _ssim_maps(
    x: Tensor,
    y: Tensor,
    data_range: float,
    window_size: int,
    sigma: float,
    k1: float,
    k2: float,
    padding: str,
) -> tuple[Tensor, Tensor]:
    """SSIM map and contrast-structure map of (N, C, H, W) inputs (differentiable)."""
    if window_size < 1 or window_size % 2 == 0:
        raise ValueError(f"window_size must be a positive odd integer, got {window_size}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    h, w = x.shape[-2:]
    if padding == "reflect":
        pad = window_size // 2
        if pad >= h or pad >= w:
            raise ValueError(
                f"ssim with padding='reflect' needs H, W > {pad}, got H={h}, W={w}"
            )
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        y = F.pad(y, (pad, pad, pad, pad), mode="reflect")
    elif padding == "valid":
        if h < window_size or w < window_size:
            raise ValueError(
                f"ssim needs images at least as large as the {window_size}x{window_size} "
                f"window, got H={h}, W={w}; use a smaller window_size or padding='reflect'"
            )
    else:
        raise ValueError(f"padding must be 'valid' or 'reflect', got {padding!r}")
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    x = x.to(dtype)
    y = y.to(dtype)
    # Subtracting a per-image constant leaves the (co)variances unchanged and keeps
    # E[x^2] - E[x]^2 away from catastrophic cancellation in float32.
    shift = 0.5 * (x.detach().mean(dim=(1, 2, 3), keepdim=True)
                   + y.detach().mean(dim=(1, 2, 3), keepdim=True))
    xc, yc = x - shift, y - shift
    c = x.shape[1]
    window = _gaussian_window(window_size, sigma, dtype, x.device)
    stats = _blur(torch.cat([xc, yc, xc * xc, yc * yc, xc * yc], dim=1), window)
    mu_xc, mu_yc, exx, eyy, exy = stats.split(c, dim=1)
    var_x = exx - mu_xc * mu_xc
    var_y = eyy - mu_yc * mu_yc
    cov = exy - mu_xc * mu_yc
    mu_x, mu_y = mu_xc + shift, mu_yc + shift
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    cs = (2.0 * cov + c2) / (var_x + var_y + c2)
    lum = (2.0 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    return lum * cs, cs


def ssim_per_image(
    x: Tensor,
    y: Tensor,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    padding: Padding = "valid",
) -> Tensor:
    """SSIM of (N, C, H, W) tensors, one value per image, without input checks.

    The differentiable core shared by :func:`ssim` and :func:`textrestore.losses.ssim_loss`.

    Args:
        x: first batch of images.
        y: second batch, same shape.
        data_range: value range, sets ``C1 = (k1 * data_range)^2``, ``C2 = (k2 * data_range)^2``.
        window_size: side of the Gaussian window (odd).
        sigma: standard deviation of the Gaussian window.
        k1: SSIM constant K1.
        k2: SSIM constant K2.
        padding: ``"valid"`` (drop the border, as skimage) or ``"reflect"`` (as torchmetrics).

    Returns:
        SSIM per image in float32 (float64 for float64 inputs).

    Shape:
        - x, y: (N, C, H, W)
        - output: (N,)

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> ssim_per_image(x, x)
        tensor([1., 1.])
    """
    s, _ = _ssim_maps(x, y, data_range, window_size, sigma, k1, k2, padding)
    return s.flatten(1).mean(dim=1)


def ms_ssim_per_image(
    x: Tensor,
    y: Tensor,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    betas: tuple[float, ...] = MS_SSIM_BETAS,
) -> Tensor:
    """Multi-scale SSIM of (N, C, H, W) tensors, one value per image, without input checks.

    ``MS-SSIM = SSIM_M^b_M * prod_{j<M} relu(CS_j)^b_j`` over ``M = len(betas)`` scales,
    each halved by 2x2 average pooling, with 'valid' windows at every scale (Wang,
    Simoncelli & Bovik 2003; the ``relu`` keeps the powers real and the gradient finite).

    Args:
        x: first batch of images.
        y: second batch, same shape.
        data_range: value range.
        window_size: side of the Gaussian window (odd).
        sigma: standard deviation of the Gaussian window.
        k1: SSIM constant K1.
        k2: SSIM constant K2.
        betas: exponent per scale, finest first.

    Returns:
        MS-SSIM per image.

    Shape:
        - x, y: (N, C, H, W) with H, W >= window_size * 2^(len(betas) - 1)
        - output: (N,)

    Example:
        >>> x = torch.rand(1, 1, 176, 176)
        >>> ms_ssim_per_image(x, x)
        tensor([1.])
    """
    scales = len(betas)
    if scales < 1:
        raise ValueError("ms_ssim needs at least one beta")
    min_side = window_size * 2 ** (scales - 1)
    h, w = x.shape[-2:]
    if h < min_side or w < min_side:
        raise ValueError(
            f"ms_ssim with {scales} scales and an {window_size}-pixel window needs H, W >= "
            f"{min_side}, got H={h}, W={w}"
        )
    weights = torch.tensor(betas, dtype=_compute_dtype(x), device=x.device)
    total = torch.ones(x.shape[0], dtype=weights.dtype, device=x.device)
    for j in range(scales):
        s_map, cs_map = _ssim_maps(x, y, data_range, window_size, sigma, k1, k2, "valid")
        if j == scales - 1:
            term = s_map.flatten(1).mean(dim=1).relu()
        else:
            term = cs_map.flatten(1).mean(dim=1).relu()
            x = F.avg_pool2d(x, 2)
            y = F.avg_pool2d(y, 2)
        total = total * term.pow(weights[j])
    return total


def ssim(
    pred: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    y_channel: bool = False,
    gt_mean: bool = False,
    reduction: Reduction = "none",
    window_size: int = 11,
    sigma: float = 1.5,
    padding: Padding = "valid",
) -> Tensor:
    """Structural similarity (Wang et al. 2004) per image, averaged over channels.

    ``SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))``
    with Gaussian-weighted local statistics (window 11, sigma 1.5), ``C1 = (0.01 L)^2``,
    ``C2 = (0.03 L)^2``, ``L = data_range``. Matches ``skimage.metrics.structural_similarity(
    ..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1,
    channel_axis=...)``; see the module docstring for ``padding``.

    Args:
        pred: restored image(s) in ``[0, data_range]``.
        target: reference image(s), same shape.
        data_range: value of full white.
        y_channel: compare the BT.601 Y channel only.
        gt_mean: apply :func:`gt_mean_align` to ``pred`` first.
        reduction: ``"none"`` (per image), ``"mean"`` or ``"sum"`` over the batch.
        window_size: side of the Gaussian window (odd).
        sigma: standard deviation of the Gaussian window.
        padding: ``"valid"`` (default, as skimage/MATLAB) or ``"reflect"`` (as torchmetrics).

    Returns:
        SSIM in (-1, 1], float32 (float64 for float64 inputs).

    Shape:
        - pred, target: (B, C, H, W) or (C, H, W) with H, W >= window_size
        - output: (B,) (or () for a single image) with ``reduction="none"``, else ()

    Example:
        >>> x = torch.rand(2, 3, 32, 32)
        >>> ssim(x, x)
        tensor([1., 1.])
    """
    p, t, single = _prepare(pred, target, data_range, y_channel, gt_mean, "ssim")
    values = ssim_per_image(p, t, float(data_range), window_size, sigma, padding=padding)
    return _reduce(values, reduction, single)


def ms_ssim(
    pred: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    y_channel: bool = False,
    gt_mean: bool = False,
    reduction: Reduction = "none",
    betas: tuple[float, ...] = MS_SSIM_BETAS,
) -> Tensor:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003) per image; see :func:`ms_ssim_per_image`.

    Args:
        pred: restored image(s) in ``[0, data_range]``.
        target: reference image(s), same shape.
        data_range: value of full white.
        y_channel: compare the BT.601 Y channel only.
        gt_mean: apply :func:`gt_mean_align` to ``pred`` first.
        reduction: ``"none"`` (per image), ``"mean"`` or ``"sum"`` over the batch.
        betas: exponent per scale, finest first (5 scales need H, W >= 176).

    Returns:
        MS-SSIM in [0, 1].

    Shape:
        - pred, target: (B, C, H, W) or (C, H, W)
        - output: (B,) (or () for a single image) with ``reduction="none"``, else ()

    Example:
        >>> x = torch.rand(1, 3, 176, 176)
        >>> ms_ssim(x, x)
        tensor([1.])
    """
    p, t, single = _prepare(pred, target, data_range, y_channel, gt_mean, "ms_ssim")
    values = ms_ssim_per_image(p, t, float(data_range), betas=betas)
    return _reduce(values, reduction, single)

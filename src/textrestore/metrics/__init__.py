"""Image-quality metrics: PSNR, SSIM, MS-SSIM, MAE, LPIPS, GT-mean variants, ``evaluate``.

Every metric takes ``pred`` and ``target`` of shape (B, C, H, W) or (C, H, W), float, in
``[0, data_range]`` (``data_range=1`` by default) and returns one value per image, (B,)
(a 0-d tensor for a single image), unless ``reduction="mean"`` or ``"sum"``.
``y_channel=True`` scores the BT.601 Y channel (as BasicSR); ``gt_mean=True`` first
rescales ``pred`` so that its mean grey equals the target's, then clips (the GT-mean
protocol of the low-light literature). Formulas and the references each metric was checked
against: ``docs/losses_metrics.md``.

Example:
    >>> import torch
    >>> from textrestore.metrics import psnr, ssim
    >>> x = torch.rand(2, 3, 32, 32)
    >>> psnr(x * 0.5, x, gt_mean=True).min() > 60
    tensor(True)
    >>> ssim(x, x, reduction="mean")
    tensor(1.)
"""

from __future__ import annotations

from textrestore.metrics.evaluation import AVAILABLE_METRICS, EvalReport, evaluate
from textrestore.metrics.functional import (
    MS_SSIM_BETAS,
    gt_mean_align,
    mae,
    ms_ssim,
    ms_ssim_per_image,
    psnr,
    rgb_to_gray,
    rgb_to_y,
    ssim,
    ssim_per_image,
)
from textrestore.metrics.perceptual import (
    LPIPS,
    find_torchvision_weights,
    load_state_dict,
    lpips,
    lpips_backbone_file,
)

__all__ = [
    "psnr",
    "ssim",
    "ms_ssim",
    "mae",
    "lpips",
    "LPIPS",
    "gt_mean_align",
    "rgb_to_y",
    "rgb_to_gray",
    "ssim_per_image",
    "ms_ssim_per_image",
    "MS_SSIM_BETAS",
    "lpips_backbone_file",
    "find_torchvision_weights",
    "load_state_dict",
    "evaluate",
    "EvalReport",
    "AVAILABLE_METRICS",
]

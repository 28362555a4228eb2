"""Where the training-like family's PSNR goes: per exposure drop and noise level, with oracles.

The quality suite's ``training`` family (the reserved evaluation photos, the suite's
seeds, the same degraded inputs) scored per image, with the degradation's parameters,
for the model and for two references that are told the true parameters:

- ``known_inverse``: the exact inverse of the degradation's exposure, illumination and
  light colour applied to the degraded image (linear light, gain map, back to sRGB): what
  a method that knows the exposure gets without removing any noise;
- ``known_inverse_blur``: the same followed by the Gaussian blur (σ from a short list)
  that scores best against the reference on that very image: a denoiser tuned per image
  with the answer at hand, as a point of comparison for the noise;
- ``known_light_auto_exposure``: the known illumination field and light colour, but the
  exposure set by a classic auto-exposure (mean linear luminance to 18 % grey) instead of
  the true drop: what not knowing the photo's own brightness costs a content-blind method;
- ``quantisation_only``: the known inverse of the same degradation drawn without noise and
  JPEG (same seeds, so the same exposure and light): what the 8-bit step alone leaves;
- ``known_exposure_grey_world``: the known exposure and illumination field, but the light's
  colour estimated by grey world (equal channel means in linear light): what not knowing
  the colour of the light costs a content-blind method.

Then the means per bin of exposure drop (stops) and per tercile of the shot noise, so that
a reader sees which inputs hold the mean PSNR down and how far each is from the oracles.
Each row also has the suite's colour-angle error (``angle_*``) of the model, the known
inverse and the blurred known inverse: how far the colour target (≤ 6° under coloured
light, ``--family colour_cast``) is from what knowing the light's colour gives.

Usage::

    python benchmarks/quality_breakdown.py --out benchmarks/results/quality_breakdown_shipped.json
    python benchmarks/quality_breakdown.py --weights runs/x/nalsuper_ms.safetensors --out x.json
    python benchmarks/quality_breakdown.py --family colour_cast \
        --out benchmarks/results/quality_breakdown_colour_cast.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, environment  # noqa: E402

from textrestore.commands._args import load_model_option  # noqa: E402
from textrestore.data.degradation import (  # noqa: E402
    ILLUMINATIONS,
    LIGHT_SOURCES,
    DegradationParams,
    degrade,
    linear_to_srgb,
    srgb_to_linear,
)
from textrestore.data.transforms import sample_seed  # noqa: E402
from textrestore.metrics import psnr  # noqa: E402
from textrestore.metrics.functional import _blur, _gaussian_window  # noqa: E402
from textrestore.metrics.suite import (  # noqa: E402
    EVAL_FAMILIES,
    colour_angle_error,
    evaluation_photos,
)

_BLUR_SIGMAS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
_STOP_BINS = ((1.0, 3.0), (3.0, 5.0), (5.0, 7.0))


def known_inverse(low: torch.Tensor, params: DegradationParams) -> torch.Tensor:
    """Undo exposure, illumination field and light colour with the true parameters."""
    return linear_to_srgb(srgb_to_linear(low) * params.gain_map()).clamp(0, 1)


def auto_exposure_inverse(low: torch.Tensor, params: DegradationParams) -> torch.Tensor:
    """Known field and light colour; exposure from mean linear luminance = 0.18."""
    lin = srgb_to_linear(low) / (params.field[:, None] * params.gains[:, :, None, None])
    luma = (lin * torch.tensor([0.2126, 0.7152, 0.0722]).view(1, 3, 1, 1)).sum(1).mean()
    return linear_to_srgb(lin * 0.18 / luma.clamp_min(1e-8)).clamp(0, 1)


def grey_world_inverse(low: torch.Tensor, params: DegradationParams) -> torch.Tensor:
    """Known exposure and field; the light's colour by grey world (equal channel means)."""
    lin = srgb_to_linear(low)
    exact = lin * params.gain_map()
    flat = lin / params.field[:, None]
    flat = flat * flat.mean((2, 3), keepdim=True).mean(1, keepdim=True) / flat.mean(
        (2, 3), keepdim=True
    ).clamp_min(1e-8)
    flat = flat * exact.mean() / flat.mean().clamp_min(1e-8)  # the true exposure
    return linear_to_srgb(flat).clamp(0, 1)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur (the SSIM metric's separable window) with reflect padding; σ = 0: x."""
    if sigma <= 0:
        return x
    radius = max(1, int(3 * sigma + 0.5))
    padded = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    return _blur(padded, _gaussian_window(2 * radius + 1, sigma, x.dtype, x.device))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=None, help="weights file (default: the shipped model)")
    ap.add_argument("--model", default=None, help="preset (default: from the weights)")
    ap.add_argument("--seeds", type=int, default=2, help="degradations per photo (suite: 2)")
    ap.add_argument("--size", type=int, default=384, help="short side of the photos (suite: 384)")
    ap.add_argument("--family", default="training", choices=sorted(EVAL_FAMILIES),
                    help="the suite's degradation family (default: training)")  # fmt: skip
    ap.add_argument("--out", default=None, help="JSON file to write")
    args = ap.parse_args()

    torch.manual_seed(0)
    model = load_model_option(args.weights, args.model).eval()
    photos = evaluation_photos(size=args.size)
    cfg = EVAL_FAMILIES[args.family]
    clean_cfg = replace(cfg, noise_free=1.0, jpeg=0.0)
    rows: list[dict[str, Any]] = []
    luma_w = torch.tensor([0.2126, 0.7152, 0.0722]).view(3, 1, 1)
    ref_ev = {
        name: float(torch.log2((srgb_to_linear(ref) * luma_w).sum(0).mean()))
        for name, ref in photos.items()
    }
    lights = list(LIGHT_SOURCES)
    with torch.no_grad():
        for name, ref in sorted(photos.items()):
            ref_b = ref[None]
            key = zlib.crc32(f"{args.family}/{name}".encode())  # the suite's seeds
            for seed in range(args.seeds):
                s = sample_seed(key, seed)
                low, params = degrade(ref_b, [s], cfg)
                low_clean, params_clean = degrade(ref_b, [s], clean_cfg)
                if float(params_clean.stops[0]) != float(params.stops[0]):
                    raise RuntimeError("the noise-free draw changed the exposure")
                out = model(low, "normal light image").clamp(0, 1)
                inv = known_inverse(low, params)
                inv_blur = max(
                    (gaussian_blur(inv, sg) for sg in _BLUR_SIGMAS),
                    key=lambda x: float(psnr(x, ref_b)),
                )
                rows.append(
                    {
                        "photo": name,
                        "seed": seed,
                        "stops": float(params.stops[0]),
                        "shot": float(params.shot[0]),
                        "read": float(params.read[0]),
                        "illumination": ILLUMINATIONS[int(params.illumination[0])],
                        "light": lights[int(params.light[0])],
                        "jpeg_quality": int(params.jpeg_quality[0]),
                        "model": float(psnr(out, ref_b)),
                        "known_inverse": float(psnr(inv, ref_b)),
                        "known_inverse_blur": float(psnr(inv_blur, ref_b)),
                        "known_light_auto_exposure": float(
                            psnr(auto_exposure_inverse(low, params), ref_b)
                        ),
                        "quantisation_only": float(
                            psnr(known_inverse(low_clean, params_clean), ref_b)
                        ),
                        "known_exposure_grey_world": float(
                            psnr(grey_world_inverse(low, params), ref_b)
                        ),
                        "angle_model": float(colour_angle_error(out, ref_b)[0]),
                        "angle_known_exposure_grey_world": float(
                            colour_angle_error(grey_world_inverse(low, params), ref_b)[0]
                        ),
                        "angle_known_inverse": float(colour_angle_error(inv, ref_b)[0]),
                        "angle_known_inverse_blur": float(colour_angle_error(inv_blur, ref_b)[0]),
                    }
                )
    methods = (
        "model", "known_inverse", "known_inverse_blur", "known_light_auto_exposure",
        "quantisation_only", "known_exposure_grey_world", "angle_model", "angle_known_inverse",
        "angle_known_inverse_blur", "angle_known_exposure_grey_world",
    )  # fmt: skip

    def summary(selected: list[dict[str, Any]]) -> dict[str, Any]:
        if not selected:  # a bin this family never draws
            return {"n": 0}
        return {
            "n": len(selected),
            **{m: statistics.fmean(r[m] for r in selected) for m in methods},
        }

    by_stops = {
        f"{lo:g}-{hi:g}": summary([r for r in rows if lo <= r["stops"] < hi or r["stops"] == hi])
        for lo, hi in _STOP_BINS
    }
    noisy = sorted((r for r in rows if r["shot"] > 0), key=lambda r: r["shot"])
    third = len(noisy) // 3
    by_noise = {
        "noise_free": summary([r for r in rows if r["shot"] == 0]),
        "shot_low": summary(noisy[:third]),
        "shot_mid": summary(noisy[third : 2 * third]),
        "shot_high": summary(noisy[2 * third :]),
    }
    by_illumination = {
        k: summary([r for r in rows if r["illumination"] == k])
        for k in ILLUMINATIONS
        if any(r["illumination"] == k for r in rows)
    }
    emit(
        {
            "environment": environment(),
            "weights": args.weights or "shipped",
            "family": args.family,
            "all": summary(rows),
            "reference_exposure_ev": {
                "note": "log2 of each reference's mean linear luminance (18 % grey: -2.47)",
                "mean": statistics.fmean(ref_ev.values()),
                "std": statistics.pstdev(ref_ev.values()),
                "min": min(ref_ev.values()),
                "max": max(ref_ev.values()),
            },
            "by_stops": by_stops,
            "by_noise": by_noise,
            "by_illumination": by_illumination,
            "images": rows,
        },
        args.out,
    )


if __name__ == "__main__":
    main()

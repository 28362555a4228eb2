"""The quality suite: how a model does on photos it never saw, per kind of low light, and by prompt.

For every degradation family of :data:`~textrestore.data.degradation.FAMILIES` (the
training mix without its well-exposed share, moderate and heavy camera noise, uneven
light, colour cast, already well exposed) each evaluation photo is degraded with fixed
seeds and enhanced by the input itself, gamma 0.4, CLAHE, a LIME-style Retinex and the
model (default prompt). Scores: PSNR, SSIM, their GT-mean variants and the colour-angle
error, with per-image win rates of the model over each baseline.

Controllability: on the ``training`` family the model is run with every exposure level of
the control vocabulary, with held-out paraphrases and with ``warmer``/``cooler``; the
suite reports the exposure (EV) of each output relative to the ``normal`` one, the share
of images whose exposure is monotonic in the level, the gaps between neighbouring levels,
the EV distance of held-out paraphrases from their level's trained wording, the R/B ratio
moves, and the same figures with the text replaced by one constant embedding (the text
ablation).

Evaluation photos: scikit-learn's sample images, matplotlib's sample photo and the nature
photos of Debian's ``mate-backgrounds`` — reserved, never used for training or validation
(:data:`~textrestore.data.corpus.RESERVED_FOR_EVALUATION`) — or any folder given.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..baselines import clahe, gamma_correct
from ..data.controls import CONTROLS, EXPOSURE_LEVELS, HELD_OUT, exposure_ev
from ..data.degradation import FAMILIES, degrade, srgb_to_linear
from ..data.image_io import is_image_file, read_image, to_tensor
from ..data.synthetic import resize_short_side
from ..data.transforms import sample_seed
from .functional import gt_mean_align, psnr, ssim

__all__ = [
    "evaluation_photos",
    "lime_retinex",
    "colour_angle_error",
    "run_quality_suite",
    "EVAL_FAMILIES",
    "METHODS",
    "format_markdown",
]

#: The families scored, each a DegradationConfig (``training`` without well-exposed inputs).
EVAL_FAMILIES = {
    "training": replace(FAMILIES["training"], well_exposed=0.0),
    **{k: v for k, v in FAMILIES.items() if k != "training"},
}
#: Methods compared, in table order (``model`` last).
METHODS: tuple[str, ...] = ("input", "gamma_0.4", "clahe", "lime", "model")

_MATE = Path("/usr/share/backgrounds/mate/nature")


def evaluation_photos(
    size: int | None = 384, folders: Sequence[str | os.PathLike[str]] = ()
) -> dict[str, Tensor]:
    """The reserved evaluation photos that are installed (or the images of ``folders``).

    Returns:
        name → (3, H, W) float tensor in [0, 1], short side ``size``.

    Raises:
        FileNotFoundError: no photo found (the message says what to install).
    """
    photos: dict[str, Tensor] = {}
    if folders:
        for folder in folders:
            root = Path(folder)
            files = (
                sorted(p for p in root.rglob("*") if is_image_file(p)) if root.is_dir() else [root]
            )
            photos.update({p.stem: read_image(p) for p in files})
    else:
        try:
            from sklearn.datasets import load_sample_images

            data = load_sample_images()
            for fname, img in zip(data.filenames, data.images):
                photos["sklearn_" + Path(fname).stem] = to_tensor(np.asarray(img))
        except ImportError:
            pass
        try:
            import matplotlib

            sample = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
            if sample.is_file():
                photos["mpl_grace_hopper"] = read_image(sample)
        except (ImportError, OSError):
            pass
        if _MATE.is_dir():
            for p in sorted(_MATE.iterdir()):
                if is_image_file(p):
                    photos["mate_" + p.stem] = read_image(p)
    if not photos:
        raise FileNotFoundError(
            "no evaluation photos: install scikit-learn, matplotlib or "
            "`apt-get install mate-backgrounds`, or pass folders"
        )
    if size is not None:
        photos = {k: resize_short_side(v, size) for k, v in photos.items()}
    return photos


def lime_retinex(image: Tensor, gamma: float = 0.8, sigma_frac: float = 0.02) -> Tensor:
    """A LIME-style Retinex baseline: divide by a smoothed max-RGB illumination map.

    ``T = blur(max_c I)^γ`` (Gaussian blur, σ a fraction of the short side, a simple
    stand-in for LIME's structure-aware refinement), output ``clip(I / max(T, 0.05))``
    (Guo et al., "LIME: low-light image enhancement via illumination map estimation", 2017).

    Example:
        >>> import torch
        >>> x = torch.full((1, 3, 8, 8), 0.1)
        >>> bool(lime_retinex(x).mean() > 0.5)
        True
    """
    t = image.amax(dim=1, keepdim=True)
    sigma = max(1.0, sigma_frac * min(image.shape[-2:]))
    radius = int(3 * sigma)
    xs = torch.arange(-radius, radius + 1, dtype=image.dtype)
    k = torch.exp(-(xs**2) / (2 * sigma**2))
    k = k / k.sum()
    pad = (radius, radius, radius, radius)
    t = F.pad(t, pad, mode="replicate")
    t = F.conv2d(F.conv2d(t, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
    return (image / t.clamp_min(0.05) ** gamma).clamp(0.0, 1.0)


def colour_angle_error(pred: Tensor, target: Tensor, min_luma: float = 0.02) -> Tensor:
    """Mean angle in degrees between the RGB vectors of ``pred`` and ``target`` per image.

    Pixels darker than ``min_luma`` in the target are left out (their hue is noise).

    Example:
        >>> import torch
        >>> x = torch.rand(2, 3, 4, 4) + 0.1
        >>> [round(v, 1) for v in colour_angle_error(x * 0.5, x).tolist()]
        [0.0, 0.0]
    """
    dot = (pred * target).sum(1)
    norm = pred.norm(dim=1) * target.norm(dim=1)
    ang = torch.rad2deg(torch.acos((dot / norm.clamp_min(1e-8)).clamp(-1.0, 1.0)))
    valid = (target.mean(1) > min_luma).float()
    return (ang * valid).sum((1, 2)) / valid.sum((1, 2)).clamp_min(1.0)


def _scores(out: Tensor, ref: Tensor) -> dict[str, float]:
    out = out.clamp(0, 1)
    aligned = gt_mean_align(out, ref)
    return {
        "psnr": float(psnr(out, ref)),
        "ssim": float(ssim(out, ref)),
        "psnr_gtmean": float(psnr(aligned, ref)),
        "ssim_gtmean": float(ssim(aligned, ref)),
        "colour_angle": float(colour_angle_error(out, ref)[0]),
    }


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def _rb_ratio(x: Tensor) -> float:
    lin = srgb_to_linear(x.clamp(0, 1))
    return float(lin[:, 0].mean() / lin[:, 2].mean().clamp_min(1e-8))


def run_quality_suite(
    model: nn.Module,
    photos: dict[str, Tensor],
    *,
    seeds: Sequence[int] = (0, 1),
    families: Sequence[str] | None = None,
    sheet_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Score ``model`` against the baselines on every family and measure its controls.

    Args:
        model: a text-guided model called as ``model(low, prompt)``, in eval mode.
        photos: name → (3, H, W) reference photos (see :func:`evaluation_photos`).
        seeds: degradation seeds per photo and family.
        families: subset of :data:`EVAL_FAMILIES` (default: all).
        sheet_dir: where to write contact sheets (JPEG) a person can look at.
        progress: called with a line of text as the suite goes.

    Returns:
        A JSON-ready dict: ``families`` (mean scores per method, per-image win rates of
        the model over each baseline), ``controls`` and ``text_ablation``.
    """
    say = progress or (lambda _: None)
    from ..inference import _ensure_prompt

    for prompt in HELD_OUT:  # held-out wordings are not in a trained model's prompt bank
        _ensure_prompt(model, prompt)
    chosen = list(families or EVAL_FAMILIES)
    unknown = set(chosen) - set(EVAL_FAMILIES)
    if unknown:
        raise ValueError(
            f"unknown families {sorted(unknown)}; expected some of {list(EVAL_FAMILIES)}"
        )
    sheets: dict[str, list[Tensor]] = {}
    result: dict[str, Any] = {"photos": sorted(photos), "seeds": list(seeds), "families": {}}

    # (input, output) per (input id, prompt): the controls ask for the same prompt on the
    # same input several times; the input is held so that its id cannot be reused.
    outputs: dict[tuple[int, str], tuple[Tensor, Tensor]] = {}

    @torch.no_grad()
    def run(low: Tensor, prompt: Any = None) -> Tensor:
        if not isinstance(prompt, str):
            return model(low, prompt).clamp(0, 1)
        key = (id(low), prompt)
        if key not in outputs:
            outputs[key] = (low, model(low, prompt).clamp(0, 1))
        return outputs[key][1]

    methods: dict[str, Callable[[Tensor], Tensor]] = {
        "input": lambda x: x,
        "gamma_0.4": gamma_correct,
        "clahe": clahe,
        "lime": lime_retinex,
        "model": run,
    }
    training_lows: list[tuple[str, Tensor, Tensor]] = []
    for family in chosen:
        cfg = EVAL_FAMILIES[family]
        rows: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
        for i, (name, ref) in enumerate(sorted(photos.items())):
            for seed in seeds:
                ref_b = ref[None]
                key = zlib.crc32(f"{family}/{name}".encode())
                low, _ = degrade(ref_b, [sample_seed(key, seed)], cfg)
                outs = {m: fn(low) for m, fn in methods.items()}
                for m, out in outs.items():
                    rows[m].append(_scores(out, ref_b))
                if family == "training":
                    training_lows.append((name, low, ref_b))
                if seed == seeds[0] and i < 6:
                    sheets.setdefault(family, []).extend(
                        [
                            outs["input"][0],
                            outs["gamma_0.4"][0],
                            outs["clahe"][0],
                            outs["lime"][0],
                            outs["model"][0],
                            ref,
                        ]  # fmt: skip
                    )
        fam: dict[str, Any] = {"mean": {m: _mean(r) for m, r in rows.items()}, "wins": {}}
        for base in METHODS[:-1]:
            fam["wins"][base] = {
                k: float(np.mean([mr[k] > br[k] for mr, br in zip(rows["model"], rows[base])]))
                for k in ("psnr", "ssim")
            }
        if family == "well_exposed":
            fam["psnr_output_vs_input"] = fam["mean"]["model"]["psnr"]
        result["families"][family] = fam
        say(f"{family}: model {fam['mean']['model']['psnr']:.2f} dB")
    if training_lows:
        result["controls"] = _controls(run, training_lows)
        result["text_ablation"] = _text_ablation(model, run, training_lows)
        say("controls and text ablation done")
    if sheet_dir is not None:
        result["contact_sheets"] = _write_sheets(sheets, training_lows, run, Path(sheet_dir))
    return result


def _exposure_table(
    run: Callable[..., Tensor], lows: list[tuple[str, Tensor, Tensor]], prompts: dict[str, str]
) -> dict[str, list[float]]:
    """EV of each prompt's output relative to the ``normal`` output, per image."""
    table: dict[str, list[float]] = {k: [] for k in prompts}
    for _, low, _ in lows:
        base = run(low, CONTROLS["normal"].prompts[0])
        for key, prompt in prompts.items():
            table[key].append(float(exposure_ev(run(low, prompt), base)[0]))
    return table


def _control_figures(
    run: Callable[..., Tensor], lows: list[tuple[str, Tensor, Tensor]]
) -> dict[str, Any]:
    levels = {lv: CONTROLS[lv].prompts[0] for lv in EXPOSURE_LEVELS}
    ev = _exposure_table(run, lows, levels)
    per_image = np.array([ev[lv] for lv in EXPOSURE_LEVELS]).T  # (images, levels)
    gaps = np.diff(per_image, axis=1)
    out: dict[str, Any] = {
        "exposure_ev_mean": {lv: float(np.mean(ev[lv])) for lv in EXPOSURE_LEVELS},
        "monotonic_fraction": float(np.mean((gaps > 0).all(axis=1))),
        "min_gap_ev_mean": float(np.mean(gaps.min(axis=1))),
        "gap_ev_mean": {
            f"{a}->{b}": float(np.mean(gaps[:, i]))
            for i, (a, b) in enumerate(zip(EXPOSURE_LEVELS, EXPOSURE_LEVELS[1:]))
        },
        "gap_at_least_0.3ev_fraction": float(np.mean((gaps >= 0.3).all(axis=1))),
    }
    warm = cool = 0
    for _, low, _ in lows:
        base = _rb_ratio(run(low, CONTROLS["normal"].prompts[0]))
        warm += _rb_ratio(run(low, CONTROLS["warmer"].prompts[0])) > base
        cool += _rb_ratio(run(low, CONTROLS["cooler"].prompts[0])) < base
    out["warmer_raises_rb_fraction"] = warm / len(lows)
    out["cooler_lowers_rb_fraction"] = cool / len(lows)
    return out


def _controls(run: Callable[..., Tensor], lows: list[tuple[str, Tensor, Tensor]]) -> dict[str, Any]:
    out = _control_figures(run, lows)
    held = {p: name for p, name in HELD_OUT.items() if name in EXPOSURE_LEVELS}
    trained = {name: CONTROLS[name].prompts[0] for name in set(held.values())}
    ev_held = _exposure_table(run, lows, {p: p for p in held})
    ev_trained = _exposure_table(run, lows, trained)
    out["held_out_paraphrases"] = {
        p: {
            "control": name,
            "ev_mean": float(np.mean(ev_held[p])),
            "trained_ev_mean": float(np.mean(ev_trained[name])),
            "abs_diff_ev_mean": float(
                np.mean(np.abs(np.array(ev_held[p]) - np.array(ev_trained[name])))
            ),
        }
        for p, name in held.items()
    }
    return out


def _text_ablation(
    model: nn.Module, run: Callable[..., Tensor], lows: list[tuple[str, Tensor, Tensor]]
) -> dict[str, Any]:
    """The control figures with every prompt replaced by one constant embedding."""
    bank = getattr(model, "prompt_bank", None)
    if bank is None:
        return {"skipped": "the model has no prompt bank"}
    constant = bank([CONTROLS["normal"].prompts[0]])

    def const_run(low: Tensor, prompt: Any = None) -> Tensor:
        return run(low, constant)

    return _control_figures(const_run, lows)


def _write_sheets(
    sheets: dict[str, list[Tensor]],
    lows: list[tuple[str, Tensor, Tensor]],
    run: Callable[..., Tensor],
    folder: Path,
) -> list[str]:
    from torchvision.utils import make_grid

    from ..data.image_io import write_image

    folder.mkdir(parents=True, exist_ok=True)
    written = []

    def save(name: str, tiles: list[Tensor], nrow: int) -> None:
        h = min(t.shape[1] for t in tiles)
        w = min(t.shape[2] for t in tiles)
        tiles = [t[:, :h, :w] for t in tiles]
        grid = make_grid(torch.stack(tiles), nrow=nrow, padding=4, pad_value=1.0)
        written.append(str(write_image(folder / f"{name}.jpg", grid)))

    for family, tiles in sheets.items():
        save(f"family_{family}", tiles, nrow=6)  # input | gamma | clahe | lime | model | ref
    prompts = [CONTROLS[lv].prompts[0] for lv in EXPOSURE_LEVELS]
    prompts += [CONTROLS["warmer"].prompts[0], CONTROLS["cooler"].prompts[0]]
    tiles = []
    for _, low, _ in lows[: 4 * 2 : 2]:
        tiles.append(low[0])
        tiles.extend(run(low, p)[0] for p in prompts)
    if tiles:
        save("controls", tiles, nrow=len(prompts) + 1)
    return written


def format_markdown(result: dict[str, Any]) -> str:
    """A markdown report of :func:`run_quality_suite`'s result."""
    lines = ["| family | method | PSNR | SSIM | GT-mean PSNR | GT-mean SSIM | colour angle (°) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for family, fam in result["families"].items():
        for m, s in fam["mean"].items():
            lines.append(
                f"| {family} | {m} | {s['psnr']:.2f} | {s['ssim']:.3f} | {s['psnr_gtmean']:.2f} "
                f"| {s['ssim_gtmean']:.3f} | {s['colour_angle']:.2f} |"
            )
    lines += ["", "Model wins per image (PSNR / SSIM):", "",
              "| family | " + " | ".join(METHODS[:-1]) + " |",
              "| --- |" + " --- |" * (len(METHODS) - 1)]  # fmt: skip
    for family, fam in result["families"].items():
        cells = [
            f"{fam['wins'][b]['psnr']:.0%} / {fam['wins'][b]['ssim']:.0%}" for b in METHODS[:-1]
        ]
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    for key in ("controls", "text_ablation"):
        if key in result:
            c = result[key]
            lines += ["", f"**{key}**: exposure EV vs normal "
                      + ", ".join(f"{k} {v:+.2f}" for k, v in c["exposure_ev_mean"].items())
                      + f"; monotonic {c['monotonic_fraction']:.0%}; all gaps ≥ 0.3 EV "
                      f"{c['gap_at_least_0.3ev_fraction']:.0%}; warmer raises R/B "
                      f"{c['warmer_raises_rb_fraction']:.0%}; cooler lowers R/B "
                      f"{c['cooler_lowers_rb_fraction']:.0%}"]  # fmt: skip
            for p, h in c.get("held_out_paraphrases", {}).items():
                lines.append(
                    f'- held out "{p}" ({h["control"]}): {h["ev_mean"]:+.2f} EV vs '
                    f"trained {h['trained_ev_mean']:+.2f} (|Δ| {h['abs_diff_ev_mean']:.2f})"
                )
    return "\n".join(lines) + "\n"

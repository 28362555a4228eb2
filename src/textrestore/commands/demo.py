"""``textrestore demo``: degrade the bundled photos, enhance them, score and show them.

The low-light inputs come from the project's one degradation model,
:func:`textrestore.data.degradation.degrade`, with the training mix of ranges less its
already well-exposed samples (:func:`demo_degradation`), one seed per photo.

Offline and with the runtime dependencies only: the sample photos ship in
``textrestore/assets``, the model is the shipped checkpoint, and CLAHE is the NumPy
port in :mod:`textrestore.baselines` (no scikit-image, no OpenCV).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._atomic import atomic_write_text
from ._args import add_device_argument, add_model_arguments, model_from_args

if TYPE_CHECKING:
    from ..data.degradation import DegradationConfig

__all__ = ["register", "run", "run_demo", "sample_photos", "METHODS", "demo_degradation"]

METHODS = ("input", "gamma 0.4", "CLAHE", "model")


#: The demo's degradation: the training mix (``FAMILIES["training"]``) with no
#: well-exposed samples, so that every photo is made dark.
def demo_degradation() -> DegradationConfig:
    """The demo's degradation: the training mix without its well-exposed share."""
    from ..data.degradation import FAMILIES

    return replace(FAMILIES["training"], well_exposed=0.0)


def __getattr__(name: str) -> Any:  # DEMO_DEGRADATION without importing torch at import time
    if name == "DEMO_DEGRADATION":
        return demo_degradation()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DESCRIPTION = """\
Turn the sample photos bundled with the package (coffee, grace_hopper; never trained
on by the shipped model) into low-light camera images with the library's degradation
model (textrestore.data.degradation.degrade: the training mix without well-exposed
samples, seed SEED + i for photo i), enhance them with the shipped model, and write
to OUT:

  grid.png        one row per photo: low light | enhanced | reference
  <photo>_low.png, <photo>_enhanced.png
  metrics.md, metrics.json   PSNR/SSIM of the input, gamma 0.4, CLAHE and the model

The table is printed too. No network, no scikit-image (CLAHE is a NumPy port of
skimage.exposure.equalize_adapthist).
"""


def sample_photos() -> list[Path]:
    """Paths of the bundled sample photos (sorted by name)."""
    folder = Path(str(resources.files("textrestore"))) / "assets"
    photos = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not photos:
        raise FileNotFoundError(f"no sample photos found in {folder}; reinstall textrestore")
    return photos


def _grid(rows: list[list[np.ndarray]], gap: int = 6) -> np.ndarray:
    widths = [sum(im.shape[1] for im in r) + gap * (len(r) + 1) for r in rows]
    height = sum(r[0].shape[0] for r in rows) + gap * (len(rows) + 1)
    canvas = np.full((height, max(widths), 3), 255, np.uint8)
    y = gap
    for r in rows:
        x = gap
        for im in r:
            canvas[y : y + im.shape[0], x : x + im.shape[1]] = im
            x += im.shape[1] + gap
        y += r[0].shape[0] + gap
    return canvas


def format_table(results: dict[str, dict[str, tuple[float, float]]]) -> str:
    """Markdown table: one row per photo and a mean row; PSNR/SSIM per method."""
    head = "| photo | " + " | ".join(f"{m} PSNR / SSIM" for m in METHODS) + " |"
    lines = [head, "| --- |" + " ---: |" * len(METHODS)]
    for name, row in results.items():
        cells = " | ".join(f"{row[m][0]:.2f} / {row[m][1]:.3f}" for m in METHODS)
        lines.append(f"| {name} | {cells} |")
    mean = {
        m: [float(np.mean([r[m][i] for r in results.values()])) for i in (0, 1)] for m in METHODS
    }
    cells = " | ".join(f"**{mean[m][0]:.2f} / {mean[m][1]:.3f}**" for m in METHODS)
    lines.append(f"| mean | {cells} |")
    return "\n".join(lines)


def run_demo(
    out: Path,
    model: Any = None,
    seed: int = 0,
    device: str = "auto",
    tile: int | str | None = None,
) -> dict[str, Any]:
    """Run the demo, write its files to ``out``; returns the metrics (see ``metrics.json``)."""
    from ..baselines import clahe, gamma_correct
    from ..data import read_image, to_array, write_image
    from ..data.degradation import degrade
    from ..inference import enhance, load_model
    from ..metrics import psnr, ssim

    start = time.perf_counter()
    net = load_model(model)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, tuple[float, float]]] = {}
    rows = []
    for i, path in enumerate(sample_photos()):
        ref = read_image(path)[None]
        low, _ = degrade(ref, [seed + i], demo_degradation())
        outs = {
            "input": low,
            "gamma 0.4": gamma_correct(low, 0.4),
            "CLAHE": clahe(low),
            "model": enhance(low, model=net, device=device, tile=tile).cpu(),
        }
        results[path.stem] = {
            k: (float(psnr(v, ref)), float(ssim(v, ref))) for k, v in outs.items()
        }
        low8, enh8 = to_array(low[0]), to_array(outs["model"][0])
        write_image(out / f"{path.stem}_low.png", low8)
        write_image(out / f"{path.stem}_enhanced.png", enh8)
        rows.append([low8, enh8, to_array(ref[0])])
    write_image(out / "grid.png", _grid(rows))
    table = format_table(results)
    seconds = time.perf_counter() - start
    note = (
        "Synthetic low light: textrestore.data.degradation.degrade(ref, "
        f"[{seed} + i], replace(FAMILIES['training'], well_exposed=0.0)) for photo i (the "
        "training mix without well-exposed samples). CLAHE: NumPy port of "
        "skimage.exposure.equalize_adapthist (clip 0.01, 1/8 tiles, HSV value)."
    )
    text = f"# textrestore demo\n\n{table}\n\n{note}\n\nTime: {seconds:.1f} s\n"
    atomic_write_text(out / "metrics.md", text)
    report = {
        "photos": {
            n: {m: {"psnr": p, "ssim": s} for m, (p, s) in r.items()} for n, r in results.items()
        },
        "seed": seed,
        "degradation": asdict(demo_degradation()),
        "seconds": seconds,
        "table": table,
    }
    atomic_write_text(out / "metrics.json", json.dumps(report, indent=2) + "\n")
    return report


def run(args: argparse.Namespace) -> int:
    """Run ``textrestore demo`` with parsed ``args``; returns the exit code."""
    if args.out.exists() and not args.out.is_dir():
        print(
            f"textrestore demo: --out {args.out} is an existing file; give a folder",
            file=sys.stderr,
        )
        return 2
    try:
        model = model_from_args(args)
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"textrestore demo: cannot load the model: {err}", file=sys.stderr)
        return 2
    report = run_demo(args.out, model, seed=args.seed, device=args.device)
    print(report["table"])
    print(
        f"\nwrote {args.out}/grid.png (low | enhanced | reference) and metrics.md "
        f"in {report['seconds']:.1f} s"
    )
    return 0


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand."""
    p = subparsers.add_parser(
        "demo",
        help="enhance the bundled sample photos and print a metrics table (offline)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out", type=Path, default=Path("textrestore-demo"), metavar="DIR",
        help="output folder (default: ./textrestore-demo)",
    )  # fmt: skip
    add_model_arguments(p)
    p.add_argument(
        "--seed", type=int, default=0, help="degradation seed of the first photo (default: 0)"
    )
    add_device_argument(p)
    p.set_defaults(func=run)

"""``textrestore benchmark-quality``: the quality suite (per kind of low light, and by prompt)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ._args import add_model_arguments, model_from_args

__all__ = ["register", "run"]

DESCRIPTION = """\
Score a model on photos it never saw, per kind of low light (training-like mix, moderate
and heavy camera noise, uneven light, colour cast, already well exposed), against the
input, gamma 0.4, CLAHE and a LIME-style Retinex: PSNR, SSIM, their GT-mean variants and
the colour-angle error, with per-image win rates. Then the controls: the exposure (EV) of
the output for every exposure prompt, held-out paraphrases, warmer/cooler, and the same
with the text replaced by one constant embedding. Writes quality.json, quality.md and
contact sheets (JPEG) to --out.

Photos: scikit-learn's sample images, matplotlib's sample photo and Debian's
mate-backgrounds nature photos (reserved for evaluation, never trained on), or --photos.
"""


def run(args: argparse.Namespace) -> int:
    """Run ``textrestore benchmark-quality`` with parsed ``args``; returns the exit code."""
    import torch

    from .._atomic import atomic_write_text
    from ..metrics.suite import evaluation_photos, format_markdown, run_quality_suite

    try:
        model = model_from_args(args)
        photos = evaluation_photos(size=args.size, folders=args.photos or ())
    except (ValueError, FileNotFoundError, TypeError, ImportError) as err:
        print(f"textrestore benchmark-quality: {err}", file=sys.stderr)
        return 2
    if args.limit:
        photos = dict(sorted(photos.items())[: args.limit])
    torch.manual_seed(0)
    out = Path(args.out)
    result: dict[str, Any] = run_quality_suite(
        model.eval(),
        photos,
        seeds=tuple(range(args.seeds)),
        families=args.families,
        sheet_dir=out / "sheets",
        progress=lambda line: print(line, flush=True),
    )
    result["command"] = " ".join(["textrestore", *sys.argv[1:]]) if sys.argv else ""
    result["weights"] = str(args.weights or f"shipped {args.model or 'default'}")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "quality.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(out / "quality.md", format_markdown(result))
    print(format_markdown(result))
    print(f"wrote {out / 'quality.json'}, {out / 'quality.md'} and {out / 'sheets'}/")
    return 0


def register(subparsers: Any) -> None:
    """Add the ``benchmark-quality`` subcommand."""
    p = subparsers.add_parser(
        "benchmark-quality",
        help="score a model per kind of low light and by prompt (JSON, markdown, contact sheets)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(p)
    p.add_argument("--out", default="quality", metavar="DIR", help="output folder")
    p.add_argument(
        "--photos", nargs="*", metavar="PATH", help="folders or files of reference photos"
    )
    p.add_argument("--size", type=int, default=384, help="short side of the photos (default 384)")
    p.add_argument("--seeds", type=int, default=2, help="degradations per photo and family")
    p.add_argument("--limit", type=int, default=0, help="use at most this many photos (0: all)")
    p.add_argument(
        "--families", nargs="*", default=None, metavar="NAME",
        help="families to score (default: all)",
    )  # fmt: skip
    p.set_defaults(func=run)

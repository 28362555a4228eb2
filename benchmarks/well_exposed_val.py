"""Does an already well-exposed photo pass unchanged? Scored on the corpus's held-out
validation photos (never the reserved evaluation photos), so that a checkpoint can be
chosen for this without looking at the evaluation suite.

The suite's ``well_exposed`` family (identity targets: only sensor noise and 8-bit/JPEG)
applied to ``textrestore.data.corpus.corpus_photos("val")``, ``--seeds`` draws per photo;
the score is PSNR(output, input) with the default prompt, as in the suite.

Usage::

    python benchmarks/well_exposed_val.py --weights OLD.safetensors NEW.safetensors \
        --out benchmarks/results/well_exposed_val.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import zlib
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, environment  # noqa: E402

from textrestore.data.corpus import VAL_PHOTOS, corpus_photos  # noqa: E402
from textrestore.data.degradation import degrade  # noqa: E402
from textrestore.data.transforms import sample_seed  # noqa: E402
from textrestore.inference import load_model  # noqa: E402
from textrestore.metrics import psnr  # noqa: E402
from textrestore.metrics.suite import EVAL_FAMILIES  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", nargs="+", default=["shipped"],
                    help="weights files, or 'shipped' for the shipped checkpoint")  # fmt: skip
    ap.add_argument("--seeds", type=int, default=4, help="draws per photo")
    ap.add_argument("--size", type=int, default=384, help="short side of the photos")
    ap.add_argument("--out", default=None, help="JSON file to write")
    args = ap.parse_args()

    photos = corpus_photos("val", size=args.size)
    cfg = EVAL_FAMILIES["well_exposed"]
    inputs = [
        degrade(ref[None], [sample_seed(zlib.crc32(f"val/{i}".encode()), s)], cfg)[0]
        for i, ref in enumerate(photos)
        for s in range(args.seeds)
    ]
    rows = []
    for weights in args.weights:
        model = load_model(None if weights == "shipped" else weights).eval()
        with torch.no_grad():
            scores = [float(psnr(model(x, "normal light image").clamp(0, 1), x)) for x in inputs]
        rows.append({"weights": weights, "psnr_output_vs_input": statistics.fmean(scores),
                     "per_image": scores})  # fmt: skip
    emit({"environment": environment(), "photos": list(VAL_PHOTOS), "seeds": args.seeds,
          "rows": rows}, args.out)  # fmt: skip


if __name__ == "__main__":
    main()

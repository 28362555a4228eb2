"""One dark photo under every control of the shipped model: ``docs/_static/controls.jpg``.

    python docs/_scripts/controls_gallery.py [--weights FILE] [--photo PATH]

The photo is never trained on (default: matplotlib's sample photo, reserved for
evaluation), darkened by the library's degradation model with a fixed seed (3 stops,
tungsten light, moderate noise), then enhanced once per prompt.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from textrestore.data import read_image, to_array
from textrestore.data.degradation import DegradationConfig, degrade
from textrestore.data.synthetic import resize_short_side
from textrestore.inference import _ensure_prompt, load_model

PROMPTS = (
    "keep the night mood",
    "slightly brighter",
    "normal light image",
    "brighter",
    "much brighter",
    "warmer",
    "cooler",
    "a bit brighter and warmer",
    "keep a little grain",
)
STATIC = Path(__file__).resolve().parents[1] / "_static"


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--weights", default=None)
    p.add_argument("--photo", default=None)
    p.add_argument("--out", type=Path, default=STATIC / "controls.jpg")
    args = p.parse_args()
    if args.photo is None:
        import matplotlib

        args.photo = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    ref = resize_short_side(read_image(args.photo), 256)[None]
    cfg = DegradationConfig(
        stops=(3.0, 3.0), well_exposed=0.0, illumination=(1, 0, 0, 0),
        light=(0, 1, 0, 0, 0), cast_strength=(0.5, 0.5), white_balance=(0.5, 0.5),
        noise_free=0.0, shot=(2e-3, 2e-3), jpeg=0.0,
    )  # fmt: skip
    low, _ = degrade(ref, [3], cfg)
    model = load_model(args.weights)
    tiles = [("dark input", low[0])]
    with torch.no_grad():
        for prompt in PROMPTS:
            _ensure_prompt(model, prompt)
            tiles.append((prompt, model(low, prompt)[0].clamp(0, 1)))
    tiles.append(("reference", ref[0]))
    h, w = ref.shape[-2:]
    cols = 4
    rows = (len(tiles) + cols - 1) // cols
    label = 22
    sheet = Image.new("RGB", (cols * (w + 6) + 6, rows * (h + label + 6) + 6), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (name, img) in enumerate(tiles):
        x, y = 6 + (i % cols) * (w + 6), 6 + (i // cols) * (h + label + 6)
        sheet.paste(Image.fromarray(np.asarray(to_array(img))), (x, y + label))
        draw.text((x + 2, y + 4), name, fill="black")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=88)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

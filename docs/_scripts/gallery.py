"""Copy the outputs of the examples' full runs into the docs gallery.

Usage::

    for s in ablation_tcm prompt_sensitivity attention_maps ifa_in_unet; do
        python examples/$s.py --out runs/$s
    done
    python docs/_scripts/gallery.py runs

For each example folder under the given root this writes
``docs/_static/examples/<name>/``: its PNGs (palette-quantised to keep the repository
small), ``summary.json``, and ``table.md`` (``summary.md`` without its title, included by
``docs/examples.md``).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from PIL import Image

DOCS = Path(__file__).resolve().parents[1]
NAMES = ("ablation_tcm", "prompt_sensitivity", "attention_maps", "ifa_in_unet")


def main(root: str) -> None:
    for name in NAMES:
        src = Path(root) / name
        if not (src / "summary.json").is_file():
            print(f"skip {name}: no {src / 'summary.json'}")
            continue
        dst = DOCS / "_static" / "examples" / name
        dst.mkdir(parents=True, exist_ok=True)
        summary = json.loads((src / "summary.json").read_text())
        for png in summary.get("images", []):
            with Image.open(src / png) as im:
                im.convert("RGB").quantize(colors=256).save(dst / png, optimize=True)
        shutil.copyfile(src / "summary.json", dst / "summary.json")
        lines = (src / "summary.md").read_text().splitlines()
        body = lines[1:] if lines and lines[0].startswith("# ") else lines
        (dst / "table.md").write_text("\n".join(body).strip() + "\n")
        print(f"{name}: {len(summary.get('images', []))} images, {summary['seconds']} s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "examples/_out")

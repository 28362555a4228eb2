"""``textrestore enhance``: enhance image files and folders with a text-guided model."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._args import add_device_argument, add_model_arguments

__all__ = ["register", "run", "collect_inputs", "EnhanceSummary"]

DESCRIPTION = """\
Enhance low-light images. Each PATH is an image file or a folder (searched
recursively for .png .jpg .jpeg .bmp .tif .tiff .webp .ppm .pgm files). Outputs go
to OUT_DIR with each file's stem and the --ext format (PNG by default); files found
in a folder keep their sub-folder under OUT_DIR. An unreadable or corrupt file is
reported and skipped while the others are written; the exit code is 1 if any file
failed, 2 if no input was found.

By default the model is the nalsuper_s checkpoint shipped with the package (no
download). Large images can be processed in overlapping tiles (--tile) that are
blended with a raised-cosine window.
"""

EPILOG = """\
examples:
  textrestore enhance dark.jpg -o out/
  textrestore enhance photos/ -o out/ --tile auto --skip-existing
  textrestore enhance a.png b.png -o out/ --weights my.safetensors --model nalsuper_t
"""


@dataclass
class EnhanceSummary:
    """What one run did: written, skipped (existing) and failed files."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)


def collect_inputs(
    paths: list[Path], out_dir: Path, ext: str
) -> tuple[list[tuple[Path, Path]], list[Path], list[Path]]:
    """Plan (input, output) pairs; also return missing paths and non-image files in folders."""
    from ..data import is_image_file

    pairs: list[tuple[Path, Path]] = []
    missing: list[Path] = []
    ignored: list[Path] = []
    out_root = out_dir.resolve()
    for path in paths:
        if path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                if out_root in f.resolve().parents:
                    continue  # never re-enhance our own outputs
                if not is_image_file(f):
                    ignored.append(f)
                    continue
                rel = f.relative_to(path).with_suffix(ext)
                pairs.append((f, out_dir / rel))
        elif path.is_file():
            pairs.append((path, out_dir / (path.stem + ext)))
        else:
            missing.append(path)
    # disambiguate outputs that would collide (same stem from different places)
    seen: dict[Path, int] = {}
    unique = []
    for src, dst in pairs:
        n = seen.get(dst, 0)
        seen[dst] = n + 1
        if n:
            dst = dst.with_name(f"{dst.stem}-{n + 1}{dst.suffix}")
        unique.append((src, dst))
    return unique, missing, ignored


def _parse_tile(value: str) -> int | str:
    if value == "auto":
        return "auto"
    try:
        tile = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int or 'auto', got {value!r}") from None
    if tile < 8:
        raise argparse.ArgumentTypeError(f"tile must be >= 8 pixels, got {tile}")
    return tile


def _parse_memory_gb(value: str) -> float:
    try:
        gb = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of GiB, got {value!r}") from None
    if not gb > 0:
        raise argparse.ArgumentTypeError(f"the memory budget must be > 0 GiB, got {value}")
    return gb


def _parse_ext(value: str) -> str:
    from ..data import IMAGE_EXTENSIONS

    ext = "." + value.lower().lstrip(".")
    if ext not in IMAGE_EXTENSIONS:
        raise argparse.ArgumentTypeError(
            f"unknown image extension {value!r}; expected one of {', '.join(IMAGE_EXTENSIONS)}"
        )
    return ext


def run(args: argparse.Namespace) -> int:
    """Run ``textrestore enhance`` with parsed ``args``; returns the exit code."""
    from tqdm import tqdm

    from ..data import read_image_array as read_image
    from ..data import write_image
    from ..inference import enhance, load_model

    out_dir: Path = args.output
    pairs, missing, ignored = collect_inputs([Path(p) for p in args.paths], out_dir, args.ext)
    summary = EnhanceSummary(ignored=ignored)
    for m in missing:
        summary.failed.append((m, "no such file or folder"))
    if not pairs and not summary.failed:
        print("textrestore enhance: no image files found in the given paths", file=sys.stderr)
        return 2
    try:
        model = (
            load_model(args.weights, preset=args.model) if args.weights else load_model(args.model)
        )
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"textrestore enhance: cannot load the model: {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    bar = tqdm(pairs, desc="enhance", unit="img", disable=args.quiet or None, file=sys.stderr)
    for src, dst in bar:
        if args.skip_existing and dst.exists():
            summary.skipped.append(dst)
            continue
        try:
            image = read_image(src)
            out = enhance(
                image,
                model=model,
                prompt=args.prompt,
                tile=args.tile,
                memory_budget=None if args.memory_gb is None else int(args.memory_gb * 2**30),
                overlap=args.overlap,
                device=args.device,
                amp=True if args.amp else None,
            )
            dst.parent.mkdir(parents=True, exist_ok=True)
            write_image(dst, out, bit_depth=None)  # 16-bit in, 16-bit out (PNG, TIFF)
            summary.written.append(dst)
        except (ValueError, FileNotFoundError, OSError, TypeError) as err:
            summary.failed.append((src, str(err)))
            tqdm.write(f"failed: {src}: {err}", file=sys.stderr)
    elapsed = time.perf_counter() - start
    print(
        f"enhanced {len(summary.written)}, skipped {len(summary.skipped)} existing, "
        f"failed {len(summary.failed)} in {elapsed:.1f}s -> {out_dir}"
    )
    if summary.ignored:
        print(f"ignored {len(summary.ignored)} non-image file(s) in folders")
    for path, reason in summary.failed:
        print(f"  FAILED {path}: {reason}", file=sys.stderr)
    return 1 if summary.failed else 0


def register(subparsers: Any) -> None:
    """Add the ``enhance`` subcommand."""
    p = subparsers.add_parser(
        "enhance",
        help="enhance low-light image files and folders",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files and/or folders")
    p.add_argument(
        "-o", "--output", type=Path, default=Path("enhanced"), metavar="OUT_DIR",
        help="output folder, created if needed (default: ./enhanced)",
    )  # fmt: skip
    add_model_arguments(p)
    p.add_argument(
        "--prompt", metavar="TEXT", default=None,
        help="text prompt (default: the model's prompt, 'normal light image'); a new prompt "
        "needs the model's text encoder installed",
    )  # fmt: skip
    p.add_argument(
        "--tile", type=_parse_tile, default=None, metavar="N|auto",
        help="process in N x N tiles, or 'auto' to pick the tile from a memory budget "
        "(default: whole image)",
    )  # fmt: skip
    p.add_argument(
        "--memory-gb", type=_parse_memory_gb, default=None, metavar="GB",
        help="memory budget of --tile auto in GiB: on CPU the bound on the process's "
        "resident memory, on CUDA on activations (default: 2 on CPU, half the free GPU memory)",
    )  # fmt: skip
    p.add_argument(
        "--overlap", type=int, default=32, metavar="PX",
        help="overlap of neighbouring tiles in pixels (default: 32)",
    )  # fmt: skip
    add_device_argument(p)
    p.add_argument("--amp", action="store_true", help="mixed precision (bf16/fp16)")
    p.add_argument(
        "--skip-existing", action="store_true", help="do not redo files whose output exists"
    )
    p.add_argument(
        "--ext", type=_parse_ext, default=".png", metavar="EXT",
        help="output format by extension: png (default), jpg, webp, tif, ...",
    )  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)

"""Peak RSS and time of ``textrestore.inference.enhance``: whole image vs tiles.

Each (preset, size, tile) runs in a fresh process (``ru_maxrss`` is that run's peak).
``tile`` is ``whole`` (never tiled), a side in pixels, or ``auto`` (``enhance``'s default:
whole or tiled from the image size and the memory; with ``--budget-gb``).
The shipped weights are used for presets that ship them (``list_pretrained()``, loaded
as ``enhance(image, model=preset)`` loads them), random weights otherwise. Each row also gives the matmul roof R measured in the same worker, the
model's FLOPs at that size (``count_flops``, reference attention path) and the achieved
GFLOP/s as a fraction of R. The time is the median of ``--repeats`` calls after a
first one, whose time is reported apart (``first_call_seconds``: it also builds oneDNN's
kernels for the new shapes, a fixed cost per process and shape). The calls follow each
other at once, as a folder of photos does, so each finds the heap the previous one left
(``textrestore.inference.HEAP_LINGER_S``); ``--gap`` waits between them, e.g. longer than
the linger to time calls that each start from a trimmed heap.

Usage::

    python benchmarks/memory.py --quick
    python benchmarks/memory.py --presets nalsuper_s nalsuper --sizes 400x600 1200x1800 \
        --tiles none auto
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, environment, loadavg, matmul_gflops, max_rss_mb, run_worker  # noqa: E402


def worker(
    preset: str,
    h: int,
    w: int,
    tile: str,
    budget_gb: float,
    keep: bool = False,
    repeats: int = 0,
    gap: float = 0.0,
) -> dict[str, Any]:
    from textrestore.allocator import keep_freed_memory
    from textrestore.inference import enhance, load_model
    from textrestore.models import create_model, list_pretrained
    from textrestore.models.cli import count_flops

    kept = keep_freed_memory() if keep else False
    torch.manual_seed(0)
    roof = matmul_gflops()
    # shipped presets as ``enhance(image, model=preset)`` loads them (library-cached)
    model = load_model(preset) if preset in list_pretrained() else create_model(preset)
    if "normal light image" not in model.prompt_bank:
        from textrestore.text import TextEmbedding

        emb = TextEmbedding.from_tensor(torch.randn(1, 8, model.text_dim))
        model.prompt_bank.add("normal light image", emb)
    image = torch.rand(3, h, w) * 0.3
    rss_before = max_rss_mb()
    # "none"/"whole": never tile; "auto": enhance()'s default (tiles when needed); N: tile N.
    tile_arg: int | str | None = (
        "whole" if tile in ("none", "whole") else (None if tile == "auto" else int(tile))
    )
    times = []
    out = None
    for i in range(1 + repeats):
        out = None  # the previous call's output is not kept alive during the next call
        if i and gap:
            time.sleep(gap)
        t0 = time.perf_counter()
        out = enhance(image, model=model, tile=tile_arg, device="cpu",
                      memory_budget=int(budget_gb * 2**30))  # fmt: skip
        times.append(time.perf_counter() - t0)
    first = times[0]
    seconds = statistics.median(times[1:]) if repeats else first
    gflops = count_flops(preset, h, w) / 1e9
    return {
        "preset": preset,
        "size": f"{h}x{w}",
        "megapixels": round(h * w / 1e6, 3),
        "tile": tile,
        "budget_gb": budget_gb,
        "keep_freed_memory": kept,
        "seconds": round(seconds, 3),
        "repeats": repeats,
        "gap_seconds": gap,
        "first_call_seconds": round(first, 3),
        "seconds_per_megapixel": round(seconds / (h * w / 1e6), 3),
        "roof_gflops_per_s": round(roof, 1),
        "seconds_x_roof": round(seconds * roof, 1),
        "model_gflops": round(gflops, 1),
        "achieved_fraction_of_roof": round(gflops / seconds / roof, 3),
        "peak_rss_mb": round(max_rss_mb(), 1),
        "rss_mb_before_enhance": round(rss_before, 1),
        "output_shape": list(out.shape),
        "loadavg": loadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["nalsuper_s"])
    p.add_argument("--sizes", nargs="+", default=["400x600", "1200x1800"])
    p.add_argument("--tiles", nargs="+", default=["none", "auto"])
    p.add_argument("--budget-gb", type=float, default=2.0)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out")
    p.add_argument("--plot", help="write a PNG of seconds per megapixel and peak RSS here")
    p.add_argument(
        "--keep-freed-memory", action="store_true",
        help="apply the command line's allocator setting (textrestore.allocator) in each worker",
    )  # fmt: skip
    p.add_argument(
        "--repeats", type=int, default=3,
        help="timed calls after a first one (whose time is reported apart: it also builds "
        "oneDNN's kernels for new shapes); the median is the row's time (0: the first call)",
    )  # fmt: skip
    p.add_argument(
        "--gap", type=float, default=0.0,
        help="seconds to wait between the calls (0: back to back, as a folder of photos)",
    )  # fmt: skip
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        h, w = (int(v) for v in args.sizes[0].split("x"))
        row = worker(args.presets[0], h, w, args.tiles[0], args.budget_gb, args.keep_freed_memory,
                     args.repeats, args.gap)  # fmt: skip
        print(json.dumps(row))
        return 0
    if args.quick:
        args.presets, args.sizes, args.tiles = ["nalsuper_t"], ["64x96"], ["none", "48"]
        args.repeats = 1
    env = environment()
    rows = []
    for preset in args.presets:
        for size in args.sizes:
            for tile in args.tiles:
                row = run_worker(Path(__file__), ["--presets", preset, "--sizes", size,
                                                  "--tiles", tile, "--budget-gb",
                                                  str(args.budget_gb), "--repeats",
                                                  str(args.repeats), "--gap",
                                                  str(args.gap),
                                                  *(["--keep-freed-memory"]
                                                    if args.keep_freed_memory else [])])  # fmt: skip
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    report: dict[str, Any] = {"benchmark": "memory", "environment": env, "rows": rows}
    report["time_per_mp_spread_from_1mp"] = _spread(rows)
    emit(report, args.out)
    if args.plot:
        _plot(rows, args.plot)
    return 0


def _spread(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Per (preset, tile): max / min seconds per megapixel over the sizes of >= 1 MP."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        if r["megapixels"] >= 0.99:
            groups.setdefault(f"{r['preset']} tile={r['tile']}", []).append(
                r["seconds_per_megapixel"]
            )
    return {k: round(max(v) / min(v), 3) for k, v in groups.items() if len(v) > 1}


def _plot(rows: list[dict[str, Any]], path: str) -> None:
    """Seconds per megapixel and peak RSS against megapixels, one line per preset/tile."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 4))
    for key in dict.fromkeys((r["preset"], r["tile"]) for r in rows):
        sel = sorted((r for r in rows if (r["preset"], r["tile"]) == key),
                     key=lambda r: r["megapixels"])  # fmt: skip
        mp = [r["megapixels"] for r in sel]
        label = f"{key[0]} (tile={key[1]})"
        ax_t.plot(mp, [r["seconds_per_megapixel"] for r in sel], "o-", label=label)
        ax_m.plot(mp, [r["peak_rss_mb"] / 1024 for r in sel], "o-", label=label)
    ax_t.set(xscale="log", xlabel="megapixels", ylabel="seconds per megapixel",
             title="time per megapixel (enhance, 2 cores)")  # fmt: skip
    ax_m.set(xscale="log", xlabel="megapixels", ylabel="peak RSS (GB)", title="peak RSS")
    ax_m.axhline(2.0, color="grey", linestyle=":", linewidth=1)
    for ax in (ax_t, ax_m):
        ax.grid(True, which="both", alpha=0.3)
        ax.set_ylim(bottom=0)
    ax_t.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())

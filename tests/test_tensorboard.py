"""TensorBoard logging of the trainer, read back with tensorboard's EventAccumulator."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("tensorboard")
from PIL import Image  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

from textrestore.train import TrainConfig, Trainer  # noqa: E402

PROMPTS = ["brighter", "much brighter"]


class Pairs(torch.utils.data.Dataset):
    prompts = PROMPTS

    def __init__(self, n: int, size: tuple[int, int] = (12, 16)) -> None:
        self.n, self.size = n, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        hi = torch.rand(3, *self.size, generator=torch.Generator().manual_seed(i))
        return {"low": hi * 0.3, "high": hi, "name": str(i), "prompt": PROMPTS[i % 2]}


def _config(out: Path, **extra) -> TrainConfig:
    values = dict(
        model="nalsuper_t", text_encoder="learned:2", steps=4, val_every=2, log_every=0,
        model_args={"dim": 8, "depth": 1, "num_heads": 2, "text_dim": 8},
        data={"batch_size": 2}, out_dir=str(out),
    )  # fmt: skip
    return TrainConfig(**{**values, **extra})


def test_scalars_and_image_grids_are_written(tmp_path: Path) -> None:
    cfg = _config(tmp_path, logger="tensorboard", log_images=2)
    Trainer(cfg, train_set=Pairs(4), val_set=Pairs(3)).fit()
    (event_dir,) = {p.parent for p in (tmp_path / "tensorboard").rglob("events.out.tfevents.*")}
    acc = EventAccumulator(str(event_dir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/grad_norm", "train/steps_per_s",
            "val/psnr", "val/ssim"} <= scalars, scalars  # fmt: skip
    assert any(t.startswith("train/loss_") for t in scalars), scalars  # the loss terms
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3, 4]
    assert [e.step for e in acc.Scalars("val/psnr")] == [0, 2, 4]
    lrs = [e.value for e in acc.Scalars("train/lr")]
    assert lrs[0] == pytest.approx(cfg.lr) and lrs[-1] < lrs[0]  # cosine decay is visible
    # one grid per known prompt: the model's default prompt and the data's prompts
    images = acc.Tags()["images"]
    for prompt in ["normal light image", *PROMPTS]:
        (tag,) = [t for t in images if t.startswith(f"val_images/{prompt} ")]
        events = acc.Images(tag)
        assert [e.step for e in events] == [0, 2, 4]
        grid = np.asarray(Image.open(io.BytesIO(events[-1].encoded_image_string)))
        pad, (h, w) = 2, Pairs(1).size
        assert grid.shape[:2] == (2 * h + 3 * pad, 3 * w + 4 * pad)  # 2 rows x 3 columns
        # column 1 is the low image of sample 0, column 3 its reference
        low = Pairs(1)[0]["low"].permute(1, 2, 0).numpy() * 255
        high = Pairs(1)[0]["high"].permute(1, 2, 0).numpy() * 255
        assert np.abs(grid[pad : pad + h, pad : pad + w, :3] - low).max() <= 1.0
        right = 3 * pad + 2 * w
        assert np.abs(grid[pad : pad + h, right : right + w, :3] - high).max() <= 1.0


def test_off_by_default_and_rank_zero_only(tmp_path: Path) -> None:
    assert TrainConfig().logger == "none"
    Trainer(_config(tmp_path / "a", steps=1), train_set=Pairs(4), val_set=False).fit()
    assert not (tmp_path / "a" / "tensorboard").exists()
    trainer = Trainer(_config(tmp_path / "b", logger="tensorboard"), train_set=Pairs(4))
    trainer.dist = dataclasses.replace(trainer.dist, rank=1, world_size=2)
    trainer._open_tensorboard()
    assert trainer._tb is None and not (tmp_path / "b" / "tensorboard").exists()
    with pytest.raises(ValueError, match="logger"):
        TrainConfig(logger="wandb")

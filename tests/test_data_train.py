"""The data pipeline inside the trainer: config-built synthetic data, per-image prompts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from textrestore import train
from textrestore.data import PairedImageFolder, SyntheticLowLight


def _tiny_cfg(out: Path, **data: object) -> object:
    return train.TrainConfig.from_dict(
        {
            "model": "nalsuper_t",
            "model_args": {"dim": 8, "depth": 1, "num_heads": 1, "text_dim": 8},
            "text_encoder": "learned:2",
            "data": {"batch_size": 2, **data},
            "steps": 3,
            "lr": 1e-3,
            "out_dir": str(out),
            "threads": 1,
        }
    )


def test_dataset_prompts_attribute(tmp_path: Path) -> None:
    for sub in ("low", "high"):
        (tmp_path / sub).mkdir()
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / sub / f"{i}.png")
    (tmp_path / "p.json").write_text(json.dumps({"0": "a", "1": "b"}))
    ds = PairedImageFolder(tmp_path, "generic", prompts=tmp_path / "p.json", prompt="a")
    assert ds.prompts == ["a", "b"]
    assert PairedImageFolder(tmp_path, "generic").prompts == []
    assert SyntheticLowLight([torch.rand(3, 8, 8)], prompt="x").prompts == ["x"]


@pytest.mark.slow
def test_trainer_on_config_built_synthetic_data(tmp_path: Path) -> None:
    cfg = _tiny_cfg(tmp_path / "run", kind="synthetic", crop=32, length=8, val_length=2)
    summary = train.Trainer(cfg).fit()
    assert (tmp_path / "run" / "last.pt").is_file()
    assert json.loads(json.dumps(summary, default=str))


@pytest.mark.slow
def test_trainer_encodes_every_per_image_prompt(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for split in ("our485", "eval15"):
        for sub in ("low", "high"):
            (root / split / sub).mkdir(parents=True)
            for i in range(4):
                arr = np.random.default_rng(i).integers(0, 255, (20, 20, 3), dtype=np.uint8)
                arr = arr // 4 if sub == "low" else arr
                Image.fromarray(arr).save(root / split / sub / f"{i}.png")
    (root / "p.json").write_text(json.dumps({"0": "dim room", "1": "night street"}))
    cfg = _tiny_cfg(
        tmp_path / "run",
        kind="lol_v1",
        root=str(root),
        crop=16,
        prompt="normal light image",
        prompts_file=str(root / "p.json"),
    )
    trainer = train.Trainer(cfg)
    trainer.fit()
    bank = trainer.model.prompt_bank if hasattr(trainer.model, "prompt_bank") else None
    if bank is None:  # DDP or EMA wrappers are not used on one process
        pytest.skip("model has no prompt bank")
    for p in ("dim room", "night street", "normal light image"):
        assert p in bank

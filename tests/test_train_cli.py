"""``textrestore train`` / ``textrestore eval`` end to end, and the example configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from textrestore.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "steps=2",
    "data.crop=32",
    "data.batch_size=2",
    "data.length=4",
    "data.val_crop=32",
    "data.val_length=1",
    "text_encoder=learned:2",
    "model_args={dim: 8, depth: 1, num_heads: 1, text_dim: 8}",
    "val_every=0",
    "ckpt_every=0",
    "resume=null",
    "threads=1",
]


@pytest.mark.parametrize("name", ["lol_v1", "lol_v2", "synthetic"])
def test_example_configs_load(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = REPO / "examples" / "configs" / f"{name}.yaml"
    assert main(["train", "--config", str(cfg), "--print-config", "data.root=/x"]) == 0
    assert "model:" in capsys.readouterr().out


def test_train_bad_key_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "stepz=3"]) == 2
    err = capsys.readouterr().err
    assert "stepz" in err and "steps" in err


@pytest.mark.slow
def test_train_then_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    cfg = REPO / "examples" / "configs" / "synthetic.yaml"
    assert main(["train", "--config", str(cfg), *TINY, f"out_dir={out}"]) == 0
    ckpt = out / "last.pt"
    assert ckpt.is_file()
    data = tmp_path / "lol"
    for sub in ("low", "high"):
        (data / "eval15" / sub).mkdir(parents=True)
        for i in (1, 2):
            arr = np.random.default_rng(i).integers(0, 255, (24, 20, 3), dtype=np.uint8)
            Image.fromarray(arr // 4 if sub == "low" else arr).save(
                data / "eval15" / sub / f"{i}.png"
            )
    capsys.readouterr()
    rc = main(["eval", "--weights", str(ckpt), "--data", str(data), "--layout", "lol_v1",
               "--out", str(tmp_path / "ev")])  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr().out
    assert "PSNR" in printed and "GT-mean" in printed
    report = json.loads((tmp_path / "ev" / "eval.json").read_text())
    for key in ("psnr", "ssim", "mae", "psnr_gt_mean", "ssim_gt_mean", "mae_gt_mean"):
        assert key in report["summary"]
    assert report["summary"]["num_images"] == 2
    assert (tmp_path / "ev" / "eval.csv").is_file()
    assert main(["eval", "--weights", str(tmp_path / "none.pt"), "--data", str(data)]) == 2
    # The same trainer checkpoint drives enhance and export: the preset and its overrides
    # come from the checkpoint's config.
    low = data / "eval15" / "low" / "1.png"
    assert main(["enhance", str(low), "-o", str(tmp_path / "enh"), "--weights", str(ckpt), "-q"]) == 0
    assert (tmp_path / "enh" / "1.png").is_file()
    exported = tmp_path / "m.pt"
    rc = main(["export", "--weights", str(ckpt), "--format", "torchscript", "-o", str(exported)])
    assert rc == 0 and exported.is_file()


def test_model_options_have_one_definition():
    """Every subcommand that loads a model declares --weights/--model/--device alike."""
    import argparse

    from textrestore.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    seen: dict[str, set[tuple]] = {}
    users = []
    for name, sub in subs.choices.items():
        opts = {a.dest: a for a in sub._actions}
        if "weights" not in opts:
            continue
        users.append(name)
        for dest in ("weights", "model", "device"):
            if dest in opts:
                a = opts[dest]
                seen.setdefault(dest, set()).add((a.default, a.help, tuple(a.choices or ())))
    assert {"enhance", "eval", "export", "demo", "app", "benchmark-quality"} <= set(users)
    assert all(len(v) == 1 for v in seen.values()), seen

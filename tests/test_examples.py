"""Every example script runs in its ``--quick`` mode and writes what it promises.

Each runs in a subprocess (as a user would run it) with its output in a tmp dir; the
test checks the exit code, that the PNGs listed in ``summary.json`` exist and are
images, and that ``summary.json`` parses. Each quick run takes about 10-25 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SCRIPTS = [
    "ablation_tcm.py",
    "prompt_sensitivity.py",
    "attention_maps.py",
    "ifa_in_unet.py",
    "train_lol.py",
]

pytest.importorskip("skimage", reason="the examples use the photos shipped with scikit-image")
pytest.importorskip("matplotlib", reason="the examples draw their figures with matplotlib")
pytest.importorskip("transformers", reason="the examples use the MiniLM text encoder")


def test_example_scripts_exist() -> None:
    found = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert set(SCRIPTS) <= found


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_example_quick(script: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick", "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["quick"] is True
    assert summary["example"] == script.removesuffix(".py")
    assert summary["seconds"] > 0
    md = (out / "summary.md").read_text()
    assert md.startswith("# ") and "|" in md
    assert summary["images"], "an example must draw at least one figure"
    for name in summary["images"]:
        png = out / name
        assert png.is_file(), f"{script}: {name} missing"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{script}: {name} is not a PNG"
    rows = summary.get("results") or summary.get("test")
    assert rows, f"{script}: no result rows"
    for row in rows:
        for key in ("psnr", "ssim", "corr_with_luma"):
            if key in row:
                assert row[key] == row[key], f"{script}: {key} is NaN in {row}"


@pytest.mark.slow
def test_train_lol_under_torchrun(tmp_path: Path) -> None:
    """Two CPU processes (Gloo) train, rank 0 saves and evaluates."""
    out = tmp_path / "out"
    env = {**os.environ, "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(EXAMPLES / "train_lol.py"), "--quick", "--out", str(out), "--device", "cpu"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert (out / "model.safetensors").is_file()

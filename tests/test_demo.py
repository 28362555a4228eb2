"""`textrestore demo` end to end in a temporary folder (runtime dependencies only)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from textrestore.commands.demo import METHODS, sample_photos


def test_sample_photos_bundled():
    photos = sample_photos()
    assert {p.stem for p in photos} == {"coffee", "grace_hopper"}
    assert all(p.stat().st_size <= 100 * 1024 for p in photos)


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    # A fresh interpreter with scikit-image made unimportable: the demo needs none of it.
    code = (
        "import sys; sys.modules['skimage'] = None; sys.modules['cv2'] = None\n"
        "from textrestore.cli import main\n"
        f"sys.exit(main(['demo', '--out', {str(tmp_path / 'demo')!r}, '--device', 'cpu']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "demo"
    for name in (
        "grid.png",
        "metrics.md",
        "metrics.json",
        "coffee_enhanced.png",
        "grace_hopper_low.png",
    ):
        assert (out / name).is_file(), name
    assert "| mean |" in proc.stdout and "CLAHE" in proc.stdout
    report = json.loads((out / "metrics.json").read_text())
    for photo, row in report["photos"].items():
        assert set(row) == set(METHODS)
        assert row["model"]["psnr"] > row["input"]["psnr"] + 5, photo


class _Identity(torch.nn.Module):
    """A stand-in model that returns its input (the demo's scoring is what is tested)."""

    def forward(self, image: torch.Tensor, text: object = None) -> torch.Tensor:
        return image


def test_demo_inputs_are_the_degradation_model_without_well_exposed_samples(tmp_path):
    from textrestore.commands.demo import run_demo
    from textrestore.data import read_image
    from textrestore.data.degradation import DegradationConfig, degrade, srgb_to_linear
    from textrestore.metrics import psnr

    report = run_demo(tmp_path, model=_Identity(), seed=5, device="cpu")
    assert report["degradation"]["well_exposed"] == 0.0
    config = DegradationConfig(well_exposed=0.0)  # the training mix, every sample dark
    for i, path in enumerate(sample_photos()):
        ref = read_image(path)[None]
        low, params = degrade(ref, [5 + i], config)
        assert not bool(params.well_exposed[0]) and float(params.stops[0]) >= 1.0
        # Darker in linear light by at least the drawn exposure drop, less noise and casts.
        assert float(srgb_to_linear(low).mean()) < 0.7 * float(srgb_to_linear(ref).mean())
        row = report["photos"][path.stem]
        assert row["input"]["psnr"] == pytest.approx(float(psnr(low, ref)), abs=1e-4)
        assert row["model"] == row["input"]  # the identity model leaves the input as is
        written = read_image(tmp_path / f"{path.stem}_low.png")[None]
        assert torch.allclose(written, low, atol=1 / 255 + 1e-6)

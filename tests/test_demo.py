"""`textrestore demo` end to end in a temporary folder (runtime dependencies only)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from textrestore.commands.demo import METHODS, sample_photos


def test_sample_photos_bundled():
    photos = sample_photos()
    assert {p.stem for p in photos} == {"astronaut", "coffee", "chelsea"}
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
        "chelsea_low.png",
    ):
        assert (out / name).is_file(), name
    assert "| mean |" in proc.stdout and "CLAHE" in proc.stdout
    report = json.loads((out / "metrics.json").read_text())
    for photo, row in report["photos"].items():
        assert set(row) == set(METHODS)
        assert row["model"]["psnr"] > row["input"]["psnr"] + 5, photo

"""A skipped test without a stated reason fails the run (tests/conftest.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def _run(tmp_path: Path, body: str) -> int:
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_case.py").write_text("import pytest\n\n\ndef test_case():\n" + body)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True).returncode


def test_unexplained_skip_fails_and_explained_skip_passes(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert _run(tmp_path / "a", "    pytest.skip()\n") == 1
    assert _run(tmp_path / "b", '    pytest.skip("needs a GPU")\n') == 0

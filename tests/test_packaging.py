"""The package as users get it: the wheel, the console script, the README's claims."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import textrestore
from textrestore.models.cli import format_table, model_table

ROOT = Path(__file__).resolve().parents[1]


def test_public_api() -> None:
    for name in textrestore.__all__:
        assert hasattr(textrestore, name), name
    from textrestore import (  # noqa: F401
        IFA,
        RTFB,
        TCM,
        ChannelAttention,
        CrossLayerAttention,
        NaLSuper,
        PixelAttention,
        create_model,
        list_models,
    )  # fmt: skip


def test_import_does_not_load_optional_backends() -> None:
    code = (
        "import sys, textrestore, textrestore.models, textrestore.text; "
        "bad = [m for m in ('open_clip', 'sentence_transformers', 'transformers') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_readme_models_table_is_current() -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- models-table:begin -->\n(.*?)<!-- models-table:end -->", readme, re.S)
    assert match, "README.md lost its models table markers"
    assert match.group(1).strip() == format_table(model_table(), 400, 600).strip()


def test_console_script_models() -> None:
    from textrestore.cli import main

    assert main(["models", "--height", "40", "--width", "60"]) == 0


@pytest.mark.slow
def test_wheel_builds_installs_and_imports(tmp_path: Path) -> None:
    dist, target = tmp_path / "dist", tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(ROOT)],
        check=True,
    )  # fmt: skip
    (wheel,) = dist.glob("textrestore-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "textrestore/py.typed" in names
    weights = sorted((ROOT / "src/textrestore/weights").glob("*.safetensors"))
    for w in weights:
        assert f"textrestore/weights/{w.name}" in names
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
    )  # fmt: skip
    code = (
        "import textrestore, pathlib; "
        f"assert pathlib.Path(textrestore.__file__).is_relative_to({str(target)!r}), textrestore.__file__; "
        "m = textrestore.create_model('nalsuper_t'); print(textrestore.__version__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}, cwd=tmp_path,
    )  # fmt: skip
    assert out.stdout.strip() == textrestore.__version__


@pytest.mark.slow
def test_sdist_and_wheel_pass_twine_and_the_wheel_runs_the_demo(tmp_path: Path) -> None:
    """``python -m build`` (sdist, then the wheel from the sdist), ``twine check``, then the
    demo from the installed wheel alone (its weights and photos), outside the repository.

    ``.ci/run`` does the same in a fresh venv with pip-installed dependencies; here the
    dependencies are this environment's (the wheel's own files come first on the path).
    """
    pytest.importorskip("build")
    pytest.importorskip("twine")
    dist, target = tmp_path / "dist", tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "-o", str(dist), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (sdist,) = dist.glob("textrestore-*.tar.gz")
    (wheel,) = dist.glob("textrestore-*.whl")
    subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(sdist), str(wheel)],
                   check=True, capture_output=True)  # fmt: skip
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("weights", "assets"):
        for f in (ROOT / "src/textrestore" / folder).iterdir():
            if f.is_file() and not f.name.startswith("."):
                assert f"textrestore/{folder}/{f.name}" in names, f.name
    assert not any(n.startswith(("tests/", "runs/", "hubconf")) for n in names)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
    )  # fmt: skip
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = (
        "import pathlib, sys, textrestore; "
        f"assert pathlib.Path(textrestore.__file__).is_relative_to({str(target)!r}); "
        "from textrestore.cli import main; sys.exit(main(['demo', '--out', 'demo']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=work,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert (work / "demo" / "grid.png").is_file() and (work / "demo" / "metrics.json").is_file()

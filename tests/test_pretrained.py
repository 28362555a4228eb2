"""The shipped checkpoint: safetensors, model card, loads with create_model, improves PSNR."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from textrestore import create_model
from textrestore.data import read_image_array
from textrestore.data.degradation import DegradationConfig, degrade
from textrestore.inference import enhance, load_model
from textrestore.metrics import psnr
from textrestore.models import list_pretrained
from textrestore.models.pretrained import pretrained_path

PRESET = "nalsuper_s"


def test_shipped_files():
    assert PRESET in list_pretrained()
    path = pretrained_path(PRESET)
    assert path.stat().st_size <= 10 * 1024**2
    state = load_file(str(path))
    assert any(k.startswith("prompt_bank.prompt_") for k in state)
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata()["preset"] == PRESET
    card = json.loads(path.with_suffix(".json").read_text())
    for key in ("data", "recipe", "seed", "validation_metrics", "command"):
        assert key in card
    assert "normal light image" in card["prompts"]
    m = card["validation_metrics"]
    best = max(m[k]["psnr"] for k in ("gamma_0.4", "clahe", "clahe_skimage"))
    assert m["model"]["psnr"] >= best + 4.0, (m["model"]["psnr"], best)


def test_loads_without_text_encoder():
    model = create_model(PRESET, pretrained=True).eval()
    bank = model.prompt_bank
    assert bank.text_encoder is None and "normal light image" in bank.prompts
    with torch.no_grad():
        out = model(torch.rand(1, 3, 16, 24))
    assert out.shape == (1, 3, 16, 24) and torch.isfinite(out).all()


def test_weights_only_torch_load(tmp_path):
    """The same state dict round-trips through torch.save / torch.load(weights_only=True)."""
    state = load_file(str(pretrained_path(PRESET)))
    torch.save(state, tmp_path / "s.pt")
    model = load_model(tmp_path / "s.pt", preset=PRESET)
    ref = load_model(PRESET)
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(model(x), ref(x))


def test_improves_psnr_on_synthetic_pairs():
    from importlib import resources
    from pathlib import Path

    photo = Path(str(resources.files("textrestore"))) / "assets" / "coffee.jpg"
    ref = torch.from_numpy(read_image_array(photo)).permute(2, 0, 1).float()[None] / 255
    ref = ref[..., :128, :192].expand(4, -1, -1, -1)
    # the demo's inputs: the degradation model's training mix, every sample dark
    low, _ = degrade(ref, [0, 1, 2, 3], DegradationConfig(well_exposed=0.0))
    out = enhance(low, device="cpu")  # model=None: the shipped checkpoint
    gains = [float(psnr(o, r)) - float(psnr(lo, r)) for o, lo, r in zip(out, low, ref)]
    assert min(gains) > 1.0 and sum(gains) / len(gains) > 5.0, gains


def test_unknown_shipped_preset():
    with pytest.raises(ValueError, match="no pretrained weights"):
        create_model("nalsuper", pretrained=True)

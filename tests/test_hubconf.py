"""torch.hub: hubconf.py at the repository root exposes every preset."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import textrestore
from textrestore.models import list_pretrained
from textrestore.models.pretrained import pretrained_path

ROOT = Path(__file__).resolve().parents[1]


def _hubconf():
    spec = importlib.util.spec_from_file_location("hubconf_under_test", ROOT / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_preset_is_an_entry_point() -> None:
    hubconf = _hubconf()
    entries = {n for n in dir(hubconf) if not n.startswith("_") and callable(getattr(hubconf, n))}
    assert entries == {*textrestore.list_models(), "from_pretrained"}
    for dep in hubconf.dependencies:  # torch.hub checks these are importable
        assert importlib.util.find_spec(dep) is not None, dep
    assert "pretrained" in hubconf.nalsuper_s.__doc__


@pytest.mark.parametrize("name", textrestore.list_models())
def test_load_local_random_init(name: str) -> None:
    model = torch.hub.load(str(ROOT), name, source="local", trust_repo=True)
    assert type(model) is type(textrestore.create_model(name))
    assert model.config == textrestore.create_model(name).config


@pytest.mark.parametrize("name", list_pretrained())
def test_load_local_pretrained(name: str) -> None:
    model = torch.hub.load(str(ROOT), name, source="local", pretrained=True).eval()
    shipped = load_file(str(pretrained_path(name)))
    state = model.state_dict()
    common = set(state) & set(shipped)  # older files differ in a few compat keys
    assert len(common) > 0.9 * len(state)
    for key in common:
        assert torch.equal(shipped[key], state[key]), key
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        ref = textrestore.create_model(name, pretrained=True).eval()(x)
        assert torch.equal(model(x), ref)


def test_pretrained_without_weights_says_so() -> None:
    missing = [n for n in textrestore.list_models() if n not in list_pretrained()]
    if not missing:
        pytest.skip("every preset ships weights")
    with pytest.raises(ValueError, match="no pretrained weights ship"):
        torch.hub.load(str(ROOT), missing[0], source="local", pretrained=True)


def test_overrides_and_from_pretrained(tmp_path: Path) -> None:
    model = torch.hub.load(str(ROOT), "nalsuper_t", source="local", dim=8, depth=1)
    assert model.config["dim"] == 8
    model.save_pretrained(tmp_path)
    loaded = torch.hub.load(str(ROOT), "from_pretrained", str(tmp_path), source="local")
    assert loaded.config == model.config

"""The multi-scale preset's linear-light gain head, and fine-tuning a model that grew it."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from textrestore.data.degradation import DegradationConfig, degrade
from textrestore.models import MultiScaleNaLSuper, create_model, load_weights
from textrestore.models.multiscale import apply_gain
from textrestore.models.pretrained import WeightsFileError


def small(**overrides: object) -> MultiScaleNaLSuper:
    args = dict(
        widths=(8, 16, 16), enc_depths=(1, 1), mid_depth=1, dec_depths=(1, 1),
        num_heads=2, text_dim=4,
    )  # fmt: skip
    return MultiScaleNaLSuper(**{**args, **overrides}).eval()


@settings(max_examples=25, deadline=None)
@given(st.floats(1.0, 7.0), st.integers(0, 2**31 - 1))
def test_a_constant_gain_of_the_stops_undoes_the_exposure_drop(stops: float, seed: int) -> None:
    """apply_gain(low, stops·ln 2) recovers a photo darkened by ``stops`` (no noise, even
    white light, no 8-bit step): the head's map is in the degradation's linear light."""
    g = torch.Generator().manual_seed(seed)
    ref = 0.1 + 0.8 * torch.rand(1, 3, 12, 16, generator=g)
    cfg = DegradationConfig(
        stops=(stops, stops), well_exposed=0.0, illumination=(1, 0, 0, 0),
        light=(1, 0, 0, 0, 0), noise_free=1.0, jpeg=0.0, quantize=False,
    )  # fmt: skip
    low, params = degrade(ref, [seed], cfg)
    log_gain = torch.full((1, 3, 1, 1), stops * math.log(2.0))
    torch.testing.assert_close(apply_gain(low, log_gain), ref, atol=2e-4, rtol=0)
    assert float(params.stops[0]) == pytest.approx(stops)


def test_the_gain_map_is_upsampled_smoothly_and_clamped() -> None:
    x = torch.full((1, 3, 8, 8), 0.2)
    log_gain = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    out = apply_gain(x, log_gain)
    row = out[0, 0, 0]
    assert bool((row[1:] >= row[:-1] - 1e-7).all()) and float(row[-1] - row[0]) > 0.05
    huge = apply_gain(x, torch.full((1, 3, 1, 1), 1e4))
    assert torch.isfinite(huge).all() and float(huge.max()) <= 1.0


def test_a_zero_initialised_gain_head_leaves_the_model_unchanged(tmp_path) -> None:
    """A trained model that grows the head (``new_modules``) gives the same output."""
    from safetensors.torch import save_model

    torch.manual_seed(0)
    plain = small()
    path = tmp_path / "plain.safetensors"
    save_model(plain, str(path))
    grown = load_weights(small(gain_head=True), path, new_modules=["gain"]).eval()
    x, text = torch.rand(2, 3, 20, 28), torch.randn(2, 3, 4)
    with torch.no_grad():
        torch.testing.assert_close(grown(x, text), plain(x, text), atol=2e-5, rtol=0)
    with pytest.raises(WeightsFileError, match="do not fit"):
        load_weights(small(gain_head=True), path)  # strict without new_modules
    with pytest.raises(WeightsFileError, match="name no submodule"):
        load_weights(small(gain_head=True), path, new_modules=["gains"])
    with pytest.raises(WeightsFileError, match="do not fit"):  # other keys still checked
        load_weights(small(gain_head=True, widths=(8, 16, 24)), path, new_modules=["gain"])


def test_the_gain_head_learns_a_global_exposure_and_has_finite_gradients() -> None:
    """Black and white pixels keep gradients finite; the head moves the output's exposure."""
    torch.manual_seed(0)
    m = small(gain_head=True).train()
    x = torch.rand(2, 3, 16, 16)
    x[:, :, :2] = 0.0
    x[:, :, -2:] = 1.0
    x.requires_grad_(True)
    m(x, torch.randn(2, 4)).mean().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)
    assert m.gain is not None and float(m.gain.weight.grad.abs().sum()) > 0
    with torch.no_grad():
        m.gain.bias.fill_(math.log(4.0))  # two stops up
        brighter = m.eval()(x.detach() * 0.3, torch.randn(2, 4))
        m.gain.bias.zero_()
        plain = m(x.detach() * 0.3, torch.randn(2, 4))
    assert float(brighter.mean()) > float(plain.mean()) + 0.1


def test_gain_head_rejects_non_rgb_and_survives_autocast() -> None:
    with pytest.raises(ValueError, match="in_chans=3"):
        small(gain_head=True, in_chans=1)
    m = small(gain_head=True)
    with torch.no_grad():
        m.gain.bias.fill_(1.0)
        x, text = torch.rand(1, 3, 24, 40), torch.randn(3, 4)
        ref = m(x, text)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = m(x, text)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert float((out.float() - ref).abs().mean()) < 0.02


def test_options_are_recorded_in_the_config() -> None:
    m = create_model("nalsuper_ms", gain_head=True)
    assert m.config["gain_head"] is True
    assert create_model("nalsuper_ms").config["gain_head"] is False


def test_train_config_checks_init_new_modules() -> None:
    from textrestore.train import TrainConfig

    with pytest.raises(ValueError, match="init_new_modules: expected init_weights"):
        TrainConfig(init_new_modules=["gain"])
    with pytest.raises(ValueError, match="init_new_modules: expected a list"):
        TrainConfig(init_weights="w.safetensors", init_new_modules="gain")  # type: ignore[arg-type]
    assert TrainConfig(init_weights="w.safetensors", init_new_modules=["gain"]).init_new_modules


def test_a_file_from_before_the_gain_head_loads_into_a_preset_that_has_one(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A safetensors file whose recorded config predates ``gain_head`` is built without it,
    even when its preset now sets it; a file recording ``gain_head`` gets what it records."""
    import json

    from safetensors.torch import save_model

    from textrestore.models import model_from_checkpoint, registry

    small_args = dict(
        widths=(8, 16, 16), enc_depths=(1, 1), mid_depth=1, dec_depths=(1, 1),
        num_heads=2, text_dim=4,
    )  # fmt: skip

    def preset(pretrained: bool = False, **overrides: object) -> MultiScaleNaLSuper:
        return MultiScaleNaLSuper(**{**small_args, "gain_head": True, **overrides})

    monkeypatch.setitem(registry._MODELS, "ms_gain_preset_test", preset)
    torch.manual_seed(0)
    old = small()
    old_config = {k: v for k, v in old.config.items() if k != "gain_head"}
    path = tmp_path / "old.safetensors"
    meta = {"preset": "ms_gain_preset_test", "config": json.dumps(old_config)}
    save_model(old, str(path), metadata=meta)
    loaded = model_from_checkpoint(path).eval()
    assert loaded.gain is None
    x, text = torch.rand(1, 3, 16, 16), torch.randn(1, 2, 4)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, text), old(x, text))
    new = small(gain_head=True)
    path_new = tmp_path / "new.safetensors"
    meta_new = {"preset": "ms_gain_preset_test", "config": json.dumps(new.config)}
    save_model(new, str(path_new), metadata=meta_new)
    assert model_from_checkpoint(path_new).gain is not None

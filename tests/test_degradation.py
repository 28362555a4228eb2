"""The degradation model, the control vocabulary and the language-labelled dataset."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from textrestore.data.controls import (
    CONTROLS,
    EXPOSURE_LEVELS,
    HELD_OUT,
    TRAIN_PROMPTS,
    exposure_ev,
    highlight_rolloff,
    make_target,
    prompt_control,
)
from textrestore.data.degradation import (
    FAMILIES,
    DegradationConfig,
    degrade,
    illumination_field,
    linear_to_srgb,
    srgb_to_linear,
)
from textrestore.data.language import LanguageLowLight


def _smoothstep_inverse_reference(y: float) -> float:
    """Bisection on 3x² - 2x³ = y: an independent inverse of the tone curve."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if 3 * mid**2 - 2 * mid**3 < y:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@given(st.floats(0.0, 1.0))
def test_unprocess_matches_a_bisection_inverse_of_the_tone_curve(y: float) -> None:
    lin = float(srgb_to_linear(torch.tensor([y], dtype=torch.float64))[0])
    u = lin ** (1 / 2.2)
    assert 3 * u**2 - 2 * u**3 == pytest.approx(y, abs=1e-7)
    assert u == pytest.approx(max(_smoothstep_inverse_reference(y), 1e-8), abs=1e-4)
    assert float(linear_to_srgb(torch.tensor([lin], dtype=torch.float64))[0]) == pytest.approx(
        y, abs=1e-6
    )


def test_exposure_drop_is_the_requested_number_of_stops_in_linear_light() -> None:
    ref = torch.rand(1, 3, 32, 32) * 0.8 + 0.1
    cfg = DegradationConfig(
        stops=(3.0, 3.0), well_exposed=0.0, illumination=(1, 0, 0, 0),
        light=(1, 0, 0, 0, 0), noise_free=1.0, jpeg=0.0, quantize=False,
    )  # fmt: skip
    low, params = degrade(ref, [7], cfg)
    ratio = srgb_to_linear(low).mean() / srgb_to_linear(ref).mean()
    assert float(torch.log2(ratio)) == pytest.approx(-3.0, abs=1e-3)
    assert float(params.stops[0]) == 3.0 and float(params.shot[0]) == 0.0


def test_noise_variance_follows_the_poisson_gaussian_model() -> None:
    flat = torch.full((1, 3, 256, 256), 0.5)
    cfg = DegradationConfig(
        stops=(2.0, 2.0), well_exposed=0.0, illumination=(1, 0, 0, 0), light=(1, 0, 0, 0, 0),
        noise_free=0.0, shot=(5e-3, 5e-3), jpeg=0.0, quantize=False,
    )  # fmt: skip
    low, params = degrade(flat, [3], cfg)
    signal = float(srgb_to_linear(torch.tensor(0.5))) / 4
    # Measure the noise in linear light, where it was added (tone curve inverted exactly).
    lin = srgb_to_linear(low)
    expected = params.shot[0] * signal + params.read[0] ** 2
    assert float(lin.var()) == pytest.approx(float(expected), rel=0.1)


def test_samples_depend_only_on_their_seed_and_parameters_come_back() -> None:
    x = torch.rand(3, 3, 24, 24)
    a, pa = degrade(x, [1, 2, 3])
    b, _ = degrade(x[1:2], [2])
    assert torch.equal(a[1:2], b)
    assert pa.gains.shape == (3, 3) and pa.field.shape == (3, 24, 24)
    assert not torch.equal(degrade(x, [4, 5, 6])[0], a)


def test_well_exposed_samples_stay_close_to_the_reference() -> None:
    ref = torch.rand(4, 3, 32, 32)
    low, params = degrade(ref, [0, 1, 2, 3], FAMILIES["well_exposed"])
    assert bool(params.well_exposed.all()) and bool((params.stops == 0).all())
    assert float((low - ref).abs().mean()) < 0.02


@pytest.mark.parametrize("kind", [1, 2, 3])
def test_uneven_illumination_fields_are_smooth_and_bounded(kind: int) -> None:
    field = illumination_field(kind, 64, 96, 0.1, torch.Generator().manual_seed(kind))
    assert float(field.min()) == pytest.approx(0.1, abs=1e-5)
    assert float(field.max()) == pytest.approx(1.0, abs=1e-5)
    assert float(field.diff(dim=1).abs().max()) < 0.2  # no edges


def test_gain_map_undoes_exposure_light_and_colour() -> None:
    ref = torch.rand(2, 3, 16, 16) * 0.5 + 0.2
    cfg = replace_cfg(noise_free=1.0, jpeg=0.0, quantize=False, well_exposed=0.0)
    low, params = degrade(ref, [11, 12], cfg)
    back = linear_to_srgb(srgb_to_linear(low) * params.gain_map())
    assert float((back - ref).abs().max()) < 1e-3


def replace_cfg(**kw: object) -> DegradationConfig:
    from dataclasses import replace

    return replace(DegradationConfig(), **kw)  # type: ignore[arg-type]


def test_bad_degradation_input_is_named() -> None:
    with pytest.raises(ValueError, match="seeds"):
        degrade(torch.rand(2, 3, 4, 4), [0])
    with pytest.raises(ValueError, match="probabilit"):
        DegradationConfig(well_exposed=1.5)
    with pytest.raises(ValueError, match="illumination"):
        DegradationConfig(illumination=(1.0, 0.0))


# -- controls ---------------------------------------------------------------------------
def test_exposure_targets_are_ordered_and_normal_is_the_reference() -> None:
    ref = torch.rand(2, 3, 16, 16) * 0.6 + 0.1
    assert make_target(ref, CONTROLS["normal"]) is ref
    evs = [float(exposure_ev(make_target(ref, CONTROLS[lv]), ref).mean()) for lv in EXPOSURE_LEVELS]
    assert evs == sorted(evs) and min(b - a for a, b in zip(evs, evs[1:])) > 0.3
    assert evs[0] == pytest.approx(CONTROLS["night"].ev, abs=0.05)  # dark edits are exact


def test_highlight_rolloff_is_continuous_and_never_clips() -> None:
    x = torch.linspace(0, 20, 2001, dtype=torch.float64)
    y = highlight_rolloff(x)
    assert float(y.max()) <= 1.0 and float(y[x <= 8].max()) < 1.0 and bool((y.diff() >= 0).all())
    assert float(y.diff().max()) <= float(x.diff().max()) + 1e-12  # slope <= 1 (C1 at knee)


def test_warmer_and_cooler_move_the_red_blue_ratio() -> None:
    ref = torch.rand(1, 3, 8, 8) * 0.5 + 0.2
    rb = lambda t: float(srgb_to_linear(t)[:, 0].mean() / srgb_to_linear(t)[:, 2].mean())  # noqa: E731
    assert (
        rb(make_target(ref, CONTROLS["warmer"]))
        > rb(ref)
        > rb(make_target(ref, CONTROLS["cooler"]))
    )


def test_grain_target_keeps_a_bounded_part_of_the_input_noise() -> None:
    ref = torch.full((1, 3, 64, 64), 0.5)
    low, params = degrade(ref, [5], replace_cfg(well_exposed=0.0, noise_free=0.0, jpeg=0.0))
    grain = make_target(ref, CONTROLS["grain"], low=low, gain=params.gain_map())
    std = float((grain - ref).std())
    assert 0.0 < std <= 0.031
    with pytest.raises(ValueError, match="grain"):
        make_target(ref, CONTROLS["grain"])


def test_vocabulary_held_out_wordings_are_never_trained() -> None:
    assert not set(HELD_OUT) & set(TRAIN_PROMPTS)
    assert all(prompt_control(p).name == name for p, name in HELD_OUT.items())
    with pytest.raises(KeyError, match="not in the control vocabulary"):
        prompt_control("make it purple")


# -- dataset ----------------------------------------------------------------------------
@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(0, 7))
def test_language_dataset_is_seeded_per_sample(seed: int, index: int) -> None:
    photos = [torch.rand(3, 48, 64, generator=torch.Generator().manual_seed(1))]
    ds = LanguageLowLight(photos, length=8, crop=16, seed=seed)
    a, b = ds[index], ds[index]
    assert torch.equal(a["low"], b["low"]) and torch.equal(a["high"], b["high"])
    assert a["prompt"] in TRAIN_PROMPTS
    target = make_target(
        a["high"][None], CONTROLS["normal"]
    )  # a normal-light prompt's target is a crop of the photo: values inside [0, 1]
    assert float(target.min()) >= 0.0 and float(target.max()) <= 1.0


def test_language_dataset_normal_prompt_targets_are_the_photo_crops() -> None:
    photo = torch.rand(3, 32, 32)
    ds = LanguageLowLight([photo], length=4, crop=32, max_zoom=1.0, augment=False,
                          prompt="normal light image")  # fmt: skip
    assert torch.equal(ds[0]["high"], photo)
    with pytest.raises(ValueError, match="crop 64 is larger"):
        LanguageLowLight([photo], crop=64)
    with pytest.raises(KeyError, match="vocabulary"):
        LanguageLowLight([photo], crop=16, prompt="purple")


def test_language_dataset_prompts_cover_every_group() -> None:
    ds = LanguageLowLight([torch.rand(3, 32, 32)], length=400, crop=16, seed=0)
    names = {prompt_control(ds[i]["prompt"]).name for i in range(400)}
    assert {"normal", "night", "much_brighter", "warmer", "grain"} <= names
    assert any("+" in n for n in names)
    assert math.isclose(len(ds.prompts), len(TRAIN_PROMPTS))


def test_reserved_evaluation_photos_cannot_enter_the_training_corpus(tmp_path) -> None:
    import matplotlib

    from textrestore.data.corpus import corpus_photos

    sample = Path(matplotlib.get_data_path()) / "sample_data"
    for reserved in (sample, sample / "grace_hopper.jpg", sample.parent):
        with pytest.raises(ValueError, match="reserved for independent evaluation"):
            corpus_photos("train", size=32, sources=("skimage",), extra=[reserved])

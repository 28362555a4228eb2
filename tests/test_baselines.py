"""Baselines: fixed gamma and the NumPy CLAHE port (vs scikit-image), on degraded photos."""

from __future__ import annotations

import pytest
import torch

import textrestore.baselines as baselines
from textrestore.baselines import clahe, gamma_correct
from textrestore.data.degradation import DegradationConfig, degrade
from textrestore.metrics import psnr

#: The demo's inputs: the training mix of the degradation model, every sample dark.
DARK = DegradationConfig(well_exposed=0.0)


def test_clahe_matches_skimage():
    data = pytest.importorskip("skimage.data")
    exposure = pytest.importorskip("skimage.exposure")
    for name, seed in (("coffee", 1), ("chelsea", 2)):
        ref = torch.from_numpy(getattr(data, name)()).permute(2, 0, 1).double()[None] / 255
        low, _ = degrade(ref, [seed], DARK)
        ours = clahe(low)
        sk = exposure.equalize_adapthist(low[0].permute(1, 2, 0).numpy())
        theirs = torch.from_numpy(sk).permute(2, 0, 1)[None]
        # measured 31.2-44.1 dB over seeds 0-5 of both photos: the port bins 256 levels where
        # skimage bins 2^14, which shows most on brighter inputs (1.5-3 stops)
        assert float(psnr(ours, theirs)) > 30
        assert ours.shape == low.shape and ours.dtype == low.dtype


def test_baselines_keep_the_shape_of_degraded_images():
    low, _ = degrade(torch.rand(2, 3, 16, 20), [3, 4], DARK)
    for fn in (gamma_correct, clahe):
        assert fn(low).shape == low.shape
        single = fn(low[0])
        assert single.shape == (3, 16, 20)
        assert torch.allclose(single, fn(low)[0], atol=1e-6)  # one image = a batch of one
    # gamma 0.4 is the power law, independent of the degradation that made the input
    assert torch.allclose(gamma_correct(low), low.double().pow(0.4).float(), atol=1e-6)


def test_the_only_degradation_is_the_degradation_model():
    assert not [name for name in vars(baselines) if "dark" in name.lower()]
    assert set(baselines.__all__) == {"gamma_correct", "clahe", "clahe_numpy"}


def test_gamma_and_bad_inputs():
    x = torch.full((3, 2, 2), 0.25)
    assert torch.allclose(gamma_correct(x, 0.5), torch.full((3, 2, 2), 0.5))
    with pytest.raises(ValueError, match="gamma"):
        gamma_correct(x, 0.0)
    with pytest.raises(ValueError, match="3 channels"):
        clahe(torch.rand(1, 4, 8, 8))
    with pytest.raises(TypeError):
        clahe(torch.zeros(3, 4, 4, dtype=torch.uint8))
    with pytest.raises(TypeError):
        gamma_correct(torch.zeros(3, 4, 4, dtype=torch.uint8))

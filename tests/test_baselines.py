"""Baselines: fixed gamma, the NumPy CLAHE port (vs scikit-image), synthetic darkening."""

from __future__ import annotations

import pytest
import torch

from textrestore.baselines import clahe, darken, gamma_correct
from textrestore.metrics import psnr


def test_clahe_matches_skimage():
    data = pytest.importorskip("skimage.data")
    exposure = pytest.importorskip("skimage.exposure")
    for name, seed in (("coffee", 1), ("chelsea", 2)):
        ref = torch.from_numpy(getattr(data, name)()).permute(2, 0, 1).double()[None] / 255
        low = darken(ref, seed=seed)
        ours = clahe(low)
        sk = exposure.equalize_adapthist(low[0].permute(1, 2, 0).numpy())
        theirs = torch.from_numpy(sk).permute(2, 0, 1)[None]
        assert float(psnr(ours, theirs)) > 35  # measured 38.8-42.8 dB
        assert ours.shape == low.shape and ours.dtype == low.dtype


def test_darken_is_seeded_and_dark():
    x = torch.rand(2, 3, 16, 16)
    a, b = darken(x, seed=3), darken(x, seed=3)
    assert torch.equal(a, b) and not torch.equal(a, darken(x, seed=4))
    assert float(a.mean()) < 0.35 * float(x.mean())
    assert torch.equal(a * 255, torch.round(a * 255))  # 8-bit levels
    fixed = darken(x, seed=0, exposure=(0.1, 0.1), gamma=(1.0, 1.0), shot=(0, 0), read=(0, 0),
                   quantize=False)  # fmt: skip
    assert torch.allclose(fixed, 0.1 * x, atol=1e-6)
    assert darken(x[0], seed=0).shape == (3, 16, 16)


def test_gamma_and_bad_inputs():
    x = torch.full((3, 2, 2), 0.25)
    assert torch.allclose(gamma_correct(x, 0.5), torch.full((3, 2, 2), 0.5))
    with pytest.raises(ValueError, match="gamma"):
        gamma_correct(x, 0.0)
    with pytest.raises(ValueError, match="3 channels"):
        clahe(torch.rand(1, 4, 8, 8))
    with pytest.raises(TypeError):
        darken(torch.zeros(3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="unknown range"):
        darken(x, seed=0, brightness=(0, 1))

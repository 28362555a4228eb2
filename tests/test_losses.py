"""Losses: zero at identity with finite gradients, agreement with the metrics, CombinedLoss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from textrestore import losses as L
from textrestore.losses import (
    CharbonnierLoss,
    CombinedLoss,
    L1Loss,
    MSELoss,
    MSSSIMLoss,
    PerceptualLoss,
    SSIMLoss,
    build_loss,
    charbonnier_loss,
    l1_loss,
    list_losses,
    ms_ssim_loss,
    mse_loss,
    ssim_loss,
)
from textrestore.metrics import ms_ssim

SMALL_BETAS = (0.2, 0.3, 0.5)  # 3 scales: images >= 44 px


def _grad_at_identity(fn, x: torch.Tensor) -> torch.Tensor:
    pred = x.clone().requires_grad_(True)
    value = fn(pred, x)
    value.backward()
    assert pred.grad is not None
    return pred.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "fn",
    [
        l1_loss,
        mse_loss,
        ssim_loss,
        lambda p, t: ssim_loss(p, t, padding="reflect"),
        lambda p, t: ms_ssim_loss(p, t, betas=SMALL_BETAS),
    ],
    ids=["l1", "mse", "ssim", "ssim_reflect", "ms_ssim"],
)
def test_zero_at_identity_with_finite_gradient(fn, dtype: torch.dtype) -> None:
    x = torch.rand(2, 3, 48, 48, dtype=dtype)
    assert float(fn(x, x)) == pytest.approx(0.0, abs=1e-6)
    grad = _grad_at_identity(fn, x)
    assert torch.isfinite(grad).all()


def test_ssim_gradient_finite_on_constant_images() -> None:
    """Flat regions (zero variance) at x == y: the classic NaN trap."""
    for value in (0.0, 0.5, 1.0):
        x = torch.full((1, 3, 22, 22), value)
        for fn in (ssim_loss, lambda p, t: ms_ssim_loss(p, t, betas=(0.5, 0.5))):
            grad = _grad_at_identity(fn, x)
            assert torch.isfinite(grad).all()
    # MS-SSIM with a negative contrast term stays finite (relu before the power).
    x = torch.rand(1, 1, 44, 44, dtype=torch.float64)
    pred = (1.0 - x).requires_grad_(True)
    ms_ssim_loss(pred, x, betas=SMALL_BETAS).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()


def test_charbonnier_minimum_is_eps() -> None:
    x = torch.rand(1, 3, 8, 8)
    assert float(charbonnier_loss(x, x, eps=1e-3)) == pytest.approx(1e-3)
    grad = _grad_at_identity(charbonnier_loss, x)
    assert torch.equal(grad, torch.zeros_like(grad))
    y = x + 0.5
    expected = torch.sqrt((x - y) ** 2 + 1e-6).mean()
    assert torch.isclose(charbonnier_loss(x, y), expected)
    with pytest.raises(ValueError, match="eps"):
        charbonnier_loss(x, y, eps=0.0)


def test_ssim_gradcheck() -> None:
    x = torch.rand(1, 2, 11, 12, dtype=torch.float64)
    y = torch.rand(1, 2, 11, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: ssim_loss(a, x), (y,), fast_mode=True)
    z = torch.rand(1, 1, 22, 22, dtype=torch.float64)
    w = torch.rand(1, 1, 22, 22, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a: ms_ssim_loss(a, z, betas=(0.4, 0.6)), (w,), fast_mode=True
    )


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), noise=st.floats(0.01, 0.5))
def test_ssim_loss_is_one_minus_skimage_ssim(seed: int, noise: float) -> None:
    """Checked against scikit-image's SSIM (Wang et al. settings), not our own metric."""
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(seed)
    t = rng.random((2, 24, 28, 3))
    p = np.clip(t + rng.normal(0.0, noise, t.shape), 0.0, 1.0)
    expected = [
        1.0 - structural_similarity(
            p[i], t[i], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            data_range=1.0, channel_axis=-1,
        )
        for i in range(2)
    ]  # fmt: skip
    pt = torch.from_numpy(p.transpose(0, 3, 1, 2).copy())
    tt = torch.from_numpy(t.transpose(0, 3, 1, 2).copy())
    got = ssim_loss(pt, tt, reduction="none")
    assert np.allclose(got.numpy(), expected, atol=1e-8)
    assert float(ssim_loss(pt, tt)) == pytest.approx(float(np.mean(expected)), abs=1e-8)


def test_ms_ssim_loss_is_one_minus_metric() -> None:
    t = torch.rand(2, 3, 176, 176)
    p = (t * 0.8 + 0.05).clamp(0, 1)
    assert torch.allclose(ms_ssim_loss(p, t, reduction="none"), 1 - ms_ssim(p, t), atol=1e-6)


def test_losses_accept_values_outside_unit_range() -> None:
    """Training outputs may leave [0, 1]; losses must not raise on them."""
    t = torch.rand(1, 3, 16, 16)
    p = t * 1.5 - 0.2
    for fn in (l1_loss, mse_loss, charbonnier_loss, ssim_loss):
        assert torch.isfinite(fn(p, t))


# --------------------------------------------------------------------------- modules


def test_modules_reduction_and_weight() -> None:
    p, t = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    cases = [
        (L1Loss, l1_loss, (2, 3, 16, 16)),
        (MSELoss, mse_loss, (2, 3, 16, 16)),
        (CharbonnierLoss, charbonnier_loss, (2, 3, 16, 16)),
        (SSIMLoss, ssim_loss, (2,)),
    ]
    for cls, fn, none_shape in cases:
        assert torch.isclose(cls(loss_weight=2.5)(p, t), 2.5 * fn(p, t))
        assert cls(reduction="none")(p, t).shape == none_shape
        assert torch.isclose(cls(reduction="sum")(p, t), fn(p, t, reduction="sum"))
        with pytest.raises(ValueError, match="reduction"):
            cls(reduction="avg")
        with pytest.raises(TypeError, match="loss_weight"):
            cls(loss_weight="1")
    big_p, big_t = torch.rand(1, 3, 44, 44), torch.rand(1, 3, 44, 44)
    m = MSSSIMLoss(loss_weight=0.5, betas=SMALL_BETAS, reduction="none")
    expected = 0.5 * ms_ssim_loss(big_p, big_t, betas=SMALL_BETAS, reduction="none")
    assert torch.allclose(m(big_p, big_t), expected)
    assert "loss_weight=0.5" in repr(m)


def test_bad_inputs() -> None:
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="same shape"):
        l1_loss(x, torch.rand(1, 3, 16, 17))
    with pytest.raises(TypeError, match="torch.Tensor"):
        ssim_loss(x.numpy(), x)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="floating-point"):
        ssim_loss(x.long(), x.long())
    with pytest.raises(ValueError, match="4-D"):
        l1_loss(x[0], x[0])
    with pytest.raises(ValueError, match="window"):
        ssim_loss(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    # padding="reflect" allows small crops.
    assert torch.isfinite(
        ssim_loss(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), padding="reflect")
    )
    with pytest.raises(ValueError, match="176"):
        ms_ssim_loss(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64))


# --------------------------------------------------------------------------- CombinedLoss


def test_combined_default_is_l1_plus_ssim_and_equals_weighted_terms() -> None:
    p = torch.rand(2, 3, 24, 24, requires_grad=True)
    t = torch.rand(2, 3, 24, 24)
    crit = CombinedLoss()
    assert crit.weights == {"l1": 1.0, "ssim": 1.0}
    total = crit(p, t)
    assert total.shape == ()
    assert torch.isclose(total, l1_loss(p, t) + ssim_loss(p, t))
    assert set(crit.last_terms) == {"l1", "ssim"}
    assert not any(v.requires_grad for v in crit.last_terms.values())
    total.backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()

    weighted = CombinedLoss({"l1": 0.3, "ssim": 2.0, "charbonnier": {"weight": 0.5, "eps": 1e-2}})
    total, terms = weighted(p, t, return_terms=True)
    expected = 0.3 * l1_loss(p, t) + 2.0 * ssim_loss(p, t) + 0.5 * charbonnier_loss(p, t, 1e-2)
    assert torch.isclose(total, expected)
    assert torch.isclose(total, sum(terms.values()))
    assert torch.isclose(terms["ssim"], 2.0 * ssim_loss(p, t))
    assert torch.isclose(weighted.last_terms["l1"], 0.3 * l1_loss(p, t))


def test_combined_from_names_and_configs() -> None:
    p, t = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    assert CombinedLoss("nalsuper").weights == {"l1": 1.0, "ssim": 1.0}
    assert CombinedLoss("l1+ssim").weights == {"l1": 1.0, "ssim": 1.0}
    assert CombinedLoss("charbonnier").weights == {"charbonnier": 1.0}
    cfg = {"terms": {"l1": 1.0, "ssim": {"weight": 0.5, "window_size": 7}}, "reduction": "sum"}
    crit = CombinedLoss.from_config(cfg)
    assert torch.isclose(
        crit(p, t), l1_loss(p, t, "sum") + 0.5 * ssim_loss(p, t, window_size=7, reduction="sum")
    )
    custom = CombinedLoss({"l1": 1.0, "mine": torch.nn.MSELoss()})
    assert torch.isclose(custom(p, t), l1_loss(p, t) + mse_loss(p, t))
    twice = CombinedLoss({"l1": 1.0, "l1@2": 2.0})
    assert torch.isclose(twice(p, t), 3 * l1_loss(p, t))
    assert isinstance(build_loss("l1"), L1Loss)
    assert isinstance(build_loss({"type": "ssim", "loss_weight": 2.0}), SSIMLoss)
    assert isinstance(build_loss(None), CombinedLoss)
    assert isinstance(build_loss("nalsuper"), CombinedLoss)
    assert isinstance(build_loss({"l1": 1.0}), CombinedLoss)
    assert {"l1", "ssim", "charbonnier", "ms_ssim", "nalsuper"} <= set(list_losses())


def test_combined_errors_list_valid_names() -> None:
    for bad in ("l3", {"l3": 1.0}):
        with pytest.raises(ValueError, match=r"unknown loss 'l3'; valid losses: \[.*'ssim'"):
            CombinedLoss(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown loss"):
        build_loss({"type": "nope"})
    with pytest.raises(TypeError, match="weight"):
        CombinedLoss({"l1": "heavy"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="at least one"):
        CombinedLoss({})
    with pytest.raises(ValueError, match="reduction"):
        CombinedLoss(reduction="none")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- perceptual


def test_perceptual_without_weights_fails_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        PerceptualLoss()
    assert "vgg19-dcbb9e9d.pth" in str(info.value)
    assert str(tmp_path / "hub" / "checkpoints") in str(info.value)
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
        PerceptualLoss(vgg_type="vgg16")


def test_perceptual_random_and_from_file(tmp_path: Path) -> None:
    layers = {"relu1_2": 1.0, "relu2_1": 0.5}
    rand = PerceptualLoss(layers, _random_init=True)
    assert len(rand.features) == 7  # conv1_1 ... relu2_1
    x = torch.rand(2, 3, 16, 16)
    assert float(rand(x, x)) == pytest.approx(0.0)
    p = torch.rand(2, 3, 16, 16, requires_grad=True)
    value = rand(p, x)
    value.backward()
    assert value.item() > 0 and p.grad is not None and torch.isfinite(p.grad).all()
    assert not any(q.requires_grad for q in rand.features.parameters())
    assert rand(p, x).shape == ()
    assert PerceptualLoss(layers, reduction="none", _random_init=True)(p, x).shape == (2,)
    # A torchvision-style file holding the needed layers only (a full VGG is 500 MB).
    state = {f"features.{k}": v for k, v in rand.features.state_dict().items()}
    torch.save(state, tmp_path / "vgg19-dcbb9e9d.pth")
    loaded = PerceptualLoss(layers, weights=tmp_path / "vgg19-dcbb9e9d.pth")
    assert torch.isclose(loaded(p, x), rand(p, x))
    # Same layer indices and names as torchvision's VGG19 (checked on a random model).
    import torchvision

    tv = torchvision.models.vgg19(weights=None).features
    assert len(L._vgg_layer_names("vgg19")) == len(tv) == 37
    assert L._vgg_layer_names("vgg19")[34] == "conv5_4" and isinstance(tv[34], torch.nn.Conv2d)
    assert len(L._vgg_layer_names("vgg16")) == len(torchvision.models.vgg16().features) == 31
    tv_state = {f"features.{k}": v for k, v in tv.state_dict().items() if int(k.split(".")[0]) < 7}
    torch.save(tv_state, tmp_path / "tv.pth")
    from_tv = PerceptualLoss({"relu2_1": 1.0}, weights=tmp_path / "tv.pth")
    norm = (x - from_tv.mean) / from_tv.std
    assert torch.allclose(from_tv._feats(x)["relu2_1"], tv[:7](norm), atol=1e-6)
    crit = CombinedLoss(
        {
            "l1": 1.0,
            "perceptual": {
                "weight": 0.1,
                "layer_weights": layers,
                "weights": tmp_path / "vgg19-dcbb9e9d.pth",
            },
        }
    )
    assert torch.isclose(crit(p, x), l1_loss(p, x) + 0.1 * rand(p, x))
    with pytest.raises(ValueError, match="unknown vgg19 layer"):
        PerceptualLoss({"conv9_9": 1.0}, _random_init=True)
    torch.save({"features.0.weight": state["features.0.weight"]}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="missing"):
        PerceptualLoss(layers, weights=tmp_path / "partial.pth")


def test_all_names_exported() -> None:
    for name in L.__all__:
        assert hasattr(L, name), name

"""Metrics: agreement with skimage and torchmetrics, properties, GT-mean, LPIPS, evaluate."""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim
from torchmetrics.functional.image import peak_signal_noise_ratio as tm_psnr
from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

from textrestore.metrics import (
    LPIPS,
    EvalReport,
    evaluate,
    gt_mean_align,
    lpips,
    lpips_backbone_file,
    mae,
    ms_ssim,
    psnr,
    rgb_to_y,
    ssim,
)

TOL = 1e-4


def _sk_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """skimage SSIM with the Wang et al. settings; a, b are (H, W, C)."""
    return float(
        sk_ssim(
            a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            data_range=data_range, channel_axis=-1,
        )
    )


def _to_torch(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


def _tm_ssim_valid(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """torchmetrics' SSIM map with the 5-pixel border dropped (the 'valid' region)."""
    _, full = tm_ssim(p, t, data_range=1.0, return_full_image=True)
    return full[..., 5:-5, 5:-5].flatten(1).mean(dim=1)


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    """Real photos from skimage.data, downscaled 4x and cropped (float64, [0, 1])."""
    out = {}
    for name in ("astronaut", "chelsea", "coffee"):
        img = getattr(skdata, name)()[::4, ::4][:72, :96]
        out[name] = img.astype(np.float64) / 255.0
    return out


def _distortions(img: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "noise": np.clip(img + rng.normal(0.0, 0.05, img.shape), 0, 1),
        "dark": img * 0.3,
        "dark_noise": np.clip(img * 0.5 + rng.normal(0.0, 0.02, img.shape), 0, 1),
        "shift": np.roll(img, 2, axis=1),
    }


# --------------------------------------------------------------------------- references


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
def test_ssim_psnr_agree_with_skimage_and_torchmetrics_on_photos(
    photos: dict[str, np.ndarray], name: str
) -> None:
    ref = photos[name]
    for kind, dist in _distortions(ref, seed=len(name)).items():
        expected_ssim = _sk_ssim(dist, ref)
        expected_psnr = float(sk_psnr(ref, dist, data_range=1.0))
        for dtype in (torch.float64, torch.float32):
            p = _to_torch(dist).to(dtype)
            t = _to_torch(ref).to(dtype)
            got_ssim = float(ssim(p, t))
            got_psnr = float(psnr(p, t))
            assert abs(got_ssim - expected_ssim) < TOL, (kind, dtype, got_ssim, expected_ssim)
            assert abs(got_psnr - expected_psnr) < TOL * max(1.0, expected_psnr), (kind, dtype)
            # torchmetrics: SSIM map cropped to the valid region; PSNR per image.
            tm_s = float(_tm_ssim_valid(p[None], t[None]))
            assert abs(got_ssim - tm_s) < TOL, (kind, dtype, got_ssim, tm_s)
            tm_p = float(tm_psnr(p[None], t[None], data_range=1.0))
            assert abs(got_psnr - tm_p) < TOL * max(1.0, tm_p)
        # padding="reflect" reproduces torchmetrics' default (uncropped) SSIM.
        p64, t64 = _to_torch(dist)[None], _to_torch(ref)[None]
        tm_full = float(tm_ssim(p64, t64, data_range=1.0))
        assert abs(float(ssim(p64, t64, padding="reflect")) - tm_full) < TOL


def test_ssim_per_image_batch_matches_single(photos: dict[str, np.ndarray]) -> None:
    refs = torch.stack([_to_torch(v) for v in photos.values()]).float()
    preds = (refs * 0.6 + 0.1).clamp(0, 1)
    batch = ssim(preds, refs)
    assert batch.shape == (3,)
    for i in range(3):
        assert abs(float(ssim(preds[i], refs[i])) - float(batch[i])) < 1e-6
    assert ssim(preds, refs, reduction="mean").shape == ()
    assert torch.isclose(ssim(preds, refs, reduction="sum"), batch.sum())


@given(
    seed=st.integers(0, 2**31 - 1),
    h=st.integers(11, 40),
    w=st.integers(11, 40),
    c=st.sampled_from([1, 3]),
    noise=st.floats(0.0, 0.5),
    scale=st.floats(0.0, 1.0),
)
def test_ssim_psnr_agree_with_skimage_hypothesis(
    seed: int, h: int, w: int, c: int, noise: float, scale: float
) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.random((h, w, c))
    dist = np.clip(ref * scale + rng.normal(0.0, noise, ref.shape), 0.0, 1.0)
    p32, t32 = _to_torch(dist).float(), _to_torch(ref).float()
    expected = _sk_ssim(dist, ref)
    assert abs(float(ssim(_to_torch(dist), _to_torch(ref))) - expected) < 1e-10
    assert abs(float(ssim(p32, t32)) - expected) < TOL
    assert abs(float(_tm_ssim_valid(p32[None], t32[None])) - expected) < TOL
    if not np.array_equal(dist, ref):
        expected_psnr = float(sk_psnr(ref, dist, data_range=1.0))
        assert abs(float(psnr(_to_torch(dist), _to_torch(ref))) - expected_psnr) < 1e-8
        tm_p = float(tm_psnr(p32[None], t32[None], data_range=1.0))
        assert abs(float(psnr(p32, t32)) - tm_p) < TOL * max(1.0, abs(tm_p))


def test_data_range_255_matches_skimage(photos: dict[str, np.ndarray]) -> None:
    ref = photos["chelsea"] * 255.0
    dist = np.clip(ref + np.random.default_rng(1).normal(0, 10, ref.shape), 0, 255)
    p, t = _to_torch(dist), _to_torch(ref)
    assert abs(float(ssim(p, t, data_range=255)) - _sk_ssim(dist, ref, 255.0)) < 1e-10
    assert abs(float(psnr(p, t, data_range=255)) - sk_psnr(ref, dist, data_range=255)) < 1e-8
    assert abs(float(mae(p, t, data_range=255)) - np.abs(dist - ref).mean()) < 1e-8


def test_y_channel_matches_basicsr_formula(photos: dict[str, np.ndarray]) -> None:
    ref = photos["coffee"]
    dist = np.clip(ref * 0.8 + 0.05, 0, 1)

    def y_basicsr(img: np.ndarray) -> np.ndarray:  # BasicSR rgb2ycbcr(y_only=True), float
        return (np.dot(img, [65.481, 128.553, 24.966]) + 16.0)[..., None] / 255.0

    p, t = _to_torch(dist), _to_torch(ref)
    assert torch.allclose(rgb_to_y(t), _to_torch(y_basicsr(ref)), atol=1e-12)
    yp, yt = y_basicsr(dist), y_basicsr(ref)
    assert abs(float(psnr(p, t, y_channel=True)) - sk_psnr(yt, yp, data_range=1.0)) < 1e-8
    assert abs(float(ssim(p, t, y_channel=True)) - _sk_ssim(yp, yt)) < 1e-10


def test_ms_ssim_matches_torchmetrics_components() -> None:
    """MS-SSIM = prod relu(CS_j)^b_j * SSIM_M^b_M, CS and SSIM on valid windows."""
    from torch.nn.functional import avg_pool2d
    from torchmetrics.functional.image.ssim import _ssim_update

    from textrestore.metrics import MS_SSIM_BETAS

    t = torch.rand(1, 3, 176, 180, dtype=torch.float64)
    p = (t * 0.7 + 0.1 * torch.rand_like(t)).clamp(0, 1)
    expected = torch.ones(1, dtype=torch.float64)
    a, b = p, t
    for j, beta in enumerate(MS_SSIM_BETAS):
        if j < len(MS_SSIM_BETAS) - 1:
            _, cs = _ssim_update(a, b, data_range=1.0, return_contrast_sensitivity=True)
            expected = expected * cs.relu() ** beta
            a, b = avg_pool2d(a, 2), avg_pool2d(b, 2)
        else:
            expected = expected * _tm_ssim_valid(a, b).relu() ** beta
    got = ms_ssim(p, t)
    assert abs(float(got) - float(expected)) < 1e-10
    assert float(ms_ssim(t, t)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="176"):
        ms_ssim(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64))


# --------------------------------------------------------------------------- properties


@given(seed=st.integers(0, 2**31 - 1), noise=st.floats(0.0, 0.4))
def test_ssim_symmetric_and_at_most_one(seed: int, noise: float) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, 16, 16, generator=g)
    y = (x + noise * torch.randn(x.shape, generator=g)).clamp(0, 1)
    s_xy, s_yx = ssim(x, y), ssim(y, x)
    assert torch.allclose(s_xy, s_yx, atol=1e-6)
    assert bool((s_xy <= 1.0 + 1e-6).all())
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-6)


def test_psnr_decreases_as_noise_grows(photos: dict[str, np.ndarray]) -> None:
    t = _to_torch(photos["astronaut"]).float()
    noise = torch.randn_like(t)
    values = [float(psnr((t + s * noise).clamp(0, 1), t)) for s in (0.01, 0.03, 0.1, 0.3)]
    assert all(a > b for a, b in zip(values, values[1:])), values
    assert math.isinf(float(psnr(t, t)))


def test_psnr_mae_known_values() -> None:
    t = torch.full((2, 3, 8, 8), 0.5)
    assert torch.allclose(psnr(t + 0.1, t), torch.tensor([20.0, 20.0], dtype=torch.float64))
    assert torch.allclose(mae(t - 0.2, t), torch.tensor([0.2, 0.2], dtype=torch.float64))
    assert psnr(t[0] + 0.1, t[0]).shape == ()
    assert mae(t + 0.1, t, reduction="mean").shape == ()


# --------------------------------------------------------------------------- GT-mean


def test_gt_mean_darker_copy_scores_near_perfect(photos: dict[str, np.ndarray]) -> None:
    t = torch.stack([_to_torch(v) for v in photos.values()]).float()
    dark = t * 0.25
    assert float(psnr(dark, t).max()) < 20
    assert float(psnr(dark, t, gt_mean=True).min()) > 60
    assert float(ssim(dark, t, gt_mean=True).min()) > 0.9999
    assert float(mae(dark, t, gt_mean=True).max()) < 1e-5
    assert float(ms_ssim(torch.ones(1, 3, 176, 176) * 0.2, torch.ones(1, 3, 176, 176) * 0.6,
                         gt_mean=True)) == pytest.approx(1.0)


def test_gt_mean_align_uses_gray_mean_and_clips() -> None:
    t = torch.rand(2, 3, 8, 8)
    p = torch.rand(2, 3, 8, 8)
    out = gt_mean_align(p, t)
    w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    scale = (t * w).sum(1).mean((1, 2)) / (p * w).sum(1).mean((1, 2))
    assert torch.allclose(out, (p * scale.view(2, 1, 1, 1)).clamp(0, 1), atol=1e-6)
    assert float(out.max()) <= 1.0
    black = gt_mean_align(torch.zeros(1, 3, 4, 4), torch.rand(1, 3, 4, 4))
    assert torch.isfinite(black).all() and float(black.abs().max()) == 0.0


# --------------------------------------------------------------------------- input checks


def test_bad_inputs_raise_clear_errors() -> None:
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="same shape"):
        psnr(x, torch.rand(1, 3, 16, 15))
    nan = x.clone()
    nan[0, 0, 0, 0] = float("nan")
    for fn in (psnr, ssim, mae):
        with pytest.raises(ValueError, match="NaN"):
            fn(nan, x)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ssim(x * 1.5, x)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mae(x, x - 0.5)
    with pytest.raises(TypeError, match="floating-point"):
        psnr((x * 255).to(torch.uint8), (x * 255).to(torch.uint8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        psnr(x.numpy(), x)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="3 channels"):
        psnr(x[:, :1], x[:, :1], y_channel=True)
    with pytest.raises(ValueError, match="window"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="reduction"):
        psnr(x, x, reduction="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        psnr(x[0, 0], x[0, 0])


def test_rounding_outside_range_is_clipped() -> None:
    x = torch.rand(1, 3, 16, 16)
    over = x.clone()
    over[0, 0, 0, 0] = 1.0005
    assert torch.isfinite(psnr(over, x)).all()
    clipped = over.clamp(0, 1)
    assert torch.equal(ssim(over, x), ssim(clipped, x))


# --------------------------------------------------------------------------- LPIPS


def test_lpips_without_weights_fails_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    x = torch.rand(1, 3, 32, 32)
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as info:
        lpips(x, x)
    message = str(info.value)
    assert "alexnet-owt-7be5be79.pth" in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
        LPIPS("vgg")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        lpips(x, x, weights=tmp_path / "missing.pth")
    assert time.perf_counter() - start < 10
    with pytest.raises(ValueError, match="unknown LPIPS net"):
        lpips_backbone_file("resnet")


def test_lpips_random_backbone_runs() -> None:
    metric = LPIPS._random("alex")
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    values = lpips(x, y, weights=metric)
    assert values.shape == (2,)
    assert torch.isfinite(values).all() and bool((values > 0).all())
    assert torch.allclose(lpips(x, x, weights=metric), torch.zeros(2), atol=1e-6)
    assert lpips(x[0], y[0], weights=metric).shape == ()
    metric.train()
    assert not metric.net.training
    with pytest.raises(ValueError, match="H, W >= 31"):
        metric(torch.rand(1, 3, 24, 40), torch.rand(1, 3, 24, 40))


def test_lpips_loads_saved_backbone_file_and_matches_torchmetrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchmetrics.functional.image.lpips as tm_lpips
    import torchvision

    backbone = torchvision.models.alexnet(weights=None)
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(backbone.state_dict(), cache / lpips_backbone_file("alex"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    x, y = torch.rand(2, 3, 40, 40), torch.rand(2, 3, 40, 40)
    got = lpips(x, y)  # found through TORCH_HOME
    # Reference: torchmetrics' own network, its heads, the same backbone weights.
    ref = tm_lpips._NoTrainLpips(net="alex", pretrained=True, pnet_rand=True)
    for slice_ in ref.net.children():
        for idx, module in slice_.named_children():
            module.load_state_dict(backbone.features[int(idx)].state_dict())
    expected = ref(x, y, normalize=True).flatten()
    assert torch.allclose(got, expected, atol=1e-6)
    explicit = lpips(x, y, weights=cache / lpips_backbone_file("alex"), gt_mean=True)
    assert explicit.shape == (2,)


# --------------------------------------------------------------------------- evaluate


class _Scale(torch.nn.Module):
    """Toy model: multiplies by a factor; records the text it was given."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = torch.nn.Parameter(torch.tensor(factor))
        self.texts: list[object] = []
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor, text: object = None) -> torch.Tensor:
        self.texts.append(text)
        self.modes.append(self.training)
        return x * self.factor


def _loader(n_batches: int = 2, b: int = 2, prompt: bool = False) -> list[dict]:
    batches = []
    for i in range(n_batches):
        high = torch.rand(b, 3, 32, 32)
        batch: dict = {"low": high * 0.5, "high": high, "name": [f"img{i}_{j}" for j in range(b)]}
        if prompt:
            batch["prompt"] = [f"prompt {i} {j}" for j in range(b)]
        batches.append(batch)
    return batches


def test_evaluate_rows_means_and_contract(tmp_path: Path) -> None:
    model = _Scale(1.0)
    model.train()
    report = evaluate(model, _loader(), prompts="normal light image")
    assert isinstance(report, EvalReport)
    assert model.training, "training flag must be restored"
    assert model.modes == [False, False], "model must run in eval mode"
    assert model.texts == ["normal light image"] * 2
    assert len(report.rows) == 4 and report.summary["num_images"] == 4
    assert report.rows[0]["name"] == "img0_0"
    assert report.rows[0]["prompt"] == "normal light image"
    for key in ("psnr", "ssim", "mae", "psnr_gt_mean", "ssim_gt_mean", "mae_gt_mean"):
        assert key in report.summary
    # low = high/2 and the model is the identity: GT-mean recovers the reference.
    assert report["psnr_gt_mean"] > 60 and report["psnr"] < 15
    mean_psnr = sum(r["psnr"] for r in report.rows) / 4
    assert report["psnr"] == pytest.approx(mean_psnr)

    report.to_json(tmp_path / "r.json")
    loaded = json.loads((tmp_path / "r.json").read_text())
    assert loaded["summary"]["num_images"] == 4 and len(loaded["rows"]) == 4
    report.to_csv(tmp_path / "r.csv")
    with open(tmp_path / "r.csv") as fh:
        lines = list(csv.DictReader(fh))
    assert len(lines) == 5 and lines[-1]["name"] == "mean"
    assert float(lines[0]["ssim"]) == pytest.approx(report.rows[0]["ssim"])


def test_evaluate_batch_prompts_default_and_options() -> None:
    model = _Scale(2.0)
    report = evaluate(model, _loader(prompt=True), prompts="ignored", gt_mean=False)
    assert model.texts[0] == ["prompt 0 0", "prompt 0 1"]
    assert report.rows[1]["prompt"] == "prompt 0 1"
    assert "psnr_gt_mean" not in report.summary
    model2 = _Scale(2.0)
    batch = _loader(1)[0]
    del batch["name"]
    report2 = evaluate(model2, [batch], metrics=("ssim",), y_channel=True)
    assert model2.texts == [None]
    assert report2.rows[0]["name"] == "00000" and "prompt" not in report2.rows[0]
    assert set(report2.summary) == {"num_images", "ssim", "ssim_gt_mean"}


def test_evaluate_json_writes_infinite_psnr_as_string(tmp_path: Path) -> None:
    high = torch.rand(1, 3, 16, 16)
    report = evaluate(_Scale(1.0), [{"low": high, "high": high}], gt_mean=False)
    assert math.isinf(report["psnr"])
    report.to_json(tmp_path / "inf.json")
    assert json.loads((tmp_path / "inf.json").read_text())["summary"]["psnr"] == "inf"


def test_evaluate_lpips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model = _Scale(1.0)
    with pytest.raises(FileNotFoundError, match="alexnet-owt-7be5be79.pth"):
        evaluate(model, _loader(), metrics=("psnr", "lpips"))
    assert model.texts == [], "LPIPS weights must be checked before the model runs"
    report = evaluate(model, _loader(1), metrics=("lpips",), lpips_weights=LPIPS._random())
    assert {"lpips", "lpips_gt_mean"} <= set(report.summary)
    assert report["lpips_gt_mean"] < 1e-5


def test_evaluate_bad_inputs() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate(_Scale(1.0), _loader(), metrics=("fid",))
    with pytest.raises(ValueError, match="'low' and 'high'"):
        evaluate(_Scale(1.0), [{"input": torch.rand(1, 3, 16, 16)}])

    class Crop(torch.nn.Module):
        def forward(self, x: torch.Tensor, text: object = None) -> torch.Tensor:
            return x[..., :-1]

    crop = Crop()
    crop.train()
    with pytest.raises(ValueError, match="does not match"):
        evaluate(crop, _loader(1))
    assert crop.training

"""The issue-5 data contract: every name the trainer imports, on tiny images in tmp dirs."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from textrestore.data import (
    LAYOUTS,
    DegradationConfig,
    PairedImageFolder,
    PairedTransform,
    SyntheticLowLight,
    build_dataset,
    collate_pairs,
    read_image,
    skimage_photos,
    write_image,
)
from textrestore.data.synthetic import SKIMAGE_TRAIN, SKIMAGE_VAL


def _rgb(h: int = 6, w: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(path: Path, arr: np.ndarray, **kwargs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kwargs)
    return path


def _as_hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy()


# -- the public names ----------------------------------------------------------------------------
def test_contract_names() -> None:
    assert LAYOUTS == ("lol_v1", "lol_v2_real", "lol_v2_synthetic", "generic")
    import textrestore.data as data

    for name in (
        "read_image", "write_image", "PairedImageFolder", "SyntheticLowLight", "skimage_photos",
        "PairedTransform", "collate_pairs", "build_dataset", "LAYOUTS",
    ):  # fmt: skip
        assert name in data.__all__ and hasattr(data, name)


# -- read_image / write_image --------------------------------------------------------------------
def test_read_16bit_png_written_by_pil_exactly(tmp_path: Path) -> None:
    values = np.array([[0, 1, 2, 255], [256, 1000, 32768, 65535]], dtype=np.uint16)
    im = Image.fromarray(values)  # Pillow: mode I;16, a 16-bit grey PNG
    assert im.mode == "I;16"
    im.save(tmp_path / "g16.png")
    got = read_image(tmp_path / "g16.png")
    assert got.dtype == torch.float32 and got.shape == (3, 2, 4)
    ref = torch.from_numpy(values.astype(np.float64) / 65535).float()
    for c in range(3):
        assert torch.equal(got[c], ref)


def test_write_16bit_png_roundtrip_exact(tmp_path: Path) -> None:
    x = torch.tensor([0, 1, 12345, 65535], dtype=torch.float64).reshape(1, 1, 4) / 65535
    x = x.expand(3, 1, 4).float().contiguous()
    write_image(tmp_path / "a.png", x, bit_depth=16)
    with Image.open(tmp_path / "a.png") as im:
        assert im.info.get("dpi") is None  # a plain PNG; depth checked below from the bytes
    assert (tmp_path / "a.png").read_bytes()[24] == 16  # IHDR bit depth
    assert torch.equal(read_image(tmp_path / "a.png"), x)
    write_image(tmp_path / "b.png", x)  # default: 8-bit
    assert (tmp_path / "b.png").read_bytes()[24] == 8


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".bmp"])
def test_write_read_formats_hwc_array_and_tensor(tmp_path: Path, suffix: str) -> None:
    arr = _rgb(5, 7)
    write_image(tmp_path / f"a{suffix}", arr.astype(np.float32) / 255)  # (H, W, 3) array
    write_image(tmp_path / f"b{suffix}", torch.from_numpy(arr).permute(2, 0, 1).float() / 255)
    a, b = read_image(tmp_path / f"a{suffix}"), read_image(tmp_path / f"b{suffix}")
    assert a.shape == b.shape == (3, 5, 7) and torch.equal(a, b)
    if suffix != ".jpg":
        assert torch.equal((a * 255).round().byte(), torch.from_numpy(arr).permute(2, 0, 1))


def test_write_is_atomic_and_validates(tmp_path: Path) -> None:
    write_image(tmp_path / "x.png", torch.rand(3, 4, 4))
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]  # no temporary file left
    with pytest.raises(ValueError, match=r"\.gif"):
        write_image(tmp_path / "x.gif", torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="bit_depth"):
        write_image(tmp_path / "x.png", torch.rand(3, 4, 4), bit_depth=12)
    with pytest.raises(ValueError, match="16-bit"):
        write_image(tmp_path / "x.jpg", torch.rand(3, 4, 4), bit_depth=16)
    with pytest.raises(TypeError, match="list"):
        write_image(tmp_path / "x.png", [[0.0]])  # type: ignore[arg-type]


def test_grey_and_rgba(tmp_path: Path) -> None:
    grey = _rgb()[..., 0]
    g = read_image(_save(tmp_path / "g.png", grey))
    assert g.shape == (3, 6, 8) and torch.equal(g[0], g[2])
    assert torch.equal((g[1] * 255).round().byte(), torch.from_numpy(grey))
    rgba = np.concatenate([_rgb(), np.full((6, 8, 1), 3, np.uint8)], axis=-1)
    a = read_image(_save(tmp_path / "a.png", rgba))
    assert torch.equal((a * 255).round().byte(), torch.from_numpy(rgba[..., :3]).permute(2, 0, 1))
    la = read_image(_save(tmp_path / "la.png", np.stack([grey, grey], -1)))  # grey + alpha
    assert torch.equal(la, g)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_applied(tmp_path: Path, orientation: int) -> None:
    # big flat blocks so that the JPEG copy is close to exact
    base = np.kron(np.arange(6, dtype=np.uint8).reshape(2, 3) * 40, np.ones((8, 8), np.uint8))
    arr = np.stack([base, 255 - base, base // 2], -1)  # (16, 24, 3), asymmetric
    k = {3: 2, 6: -1, 8: 1}[orientation]  # np.rot90 turns that display the stored pixels
    want = np.rot90(arr, k)
    for suffix in (".png", ".jpg"):
        im = Image.fromarray(arr)
        exif = im.getexif()
        exif[0x0112] = orientation
        p = tmp_path / f"o{orientation}{suffix}"
        extra: dict[str, Any] = {"quality": 100, "subsampling": 0} if suffix == ".jpg" else {}
        im.save(p, exif=exif, **extra)
        got = np.round(_as_hwc(read_image(p)) * 255)
        assert got.shape == want.shape
        err = np.abs(got - want).mean()
        assert err == 0 if suffix == ".png" else err < 8  # a wrong orientation: ~97


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="absent.png"):
        read_image(tmp_path / "absent.png")
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8 this is no jpeg")
    with pytest.raises(ValueError, match="junk.jpg"):
        read_image(tmp_path / "junk.jpg")
    for suffix in (".png", ".jpg"):
        good = _save(tmp_path / f"good{suffix}", _rgb(64, 64))
        data = good.read_bytes()
        cut = tmp_path / f"cut{suffix}"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(ValueError, match=f"cut\\{suffix}"):
            read_image(cut)
    big16 = tmp_path / "g16.png"
    Image.fromarray(np.arange(4096, dtype=np.uint16).reshape(64, 64) * 13).save(big16)
    (tmp_path / "cut16.png").write_bytes(big16.read_bytes()[:200])
    with pytest.raises(ValueError, match="cut16.png"):
        read_image(tmp_path / "cut16.png")


# -- paired folders ------------------------------------------------------------------------------
def _pair(root: Path, low: str, high: str, seed: int, hw: tuple[int, int] = (6, 8)) -> None:
    hi = _rgb(*hw, seed=seed)
    _save(root / low, hi // 3)
    _save(root / high, hi)


def _check_pairs(ds: PairedImageFolder) -> None:
    """Every low image is the high image // 3 of the same seed: the pairing is right."""
    for i in range(len(ds)):
        s = ds[i]
        want = torch.floor(s["high"] * 255 / 3) / 255
        assert torch.allclose(s["low"], want, atol=1e-6), s["name"]


def test_lol_v1_layout(tmp_path: Path) -> None:
    for i in (1, 2, 10):
        _pair(tmp_path, f"our485/low/{i}.png", f"our485/high/{i}.png", i)
    for i in (5, 7):
        _pair(tmp_path, f"eval15/low/{i}.png", f"eval15/high/{i}.png", i)
    train = PairedImageFolder(tmp_path, layout="lol_v1", split="train")
    assert [train[i]["name"] for i in range(3)] == ["1", "2", "10"]
    _check_pairs(train)
    for split in ("test", "val"):
        ds = PairedImageFolder(tmp_path, layout="lol_v1", split=split)
        assert ds.names == ["5", "7"]
        _check_pairs(ds)
    s = train[0]
    assert set(s) == {"low", "high", "name"} and s["low"].dtype == torch.float32


@pytest.mark.parametrize("nested", [False, True])
def test_lol_v2_real_layout_matches_numeric_id(tmp_path: Path, nested: bool) -> None:
    base = tmp_path / "Real_captured" if nested else tmp_path
    # shuffled seeds so that a pairing by position would be wrong
    for i, seed in ((1, 11), (2, 5), (30, 7)):
        _pair(base, f"Train/Low/low{i:05d}.png", f"Train/Normal/normal{i:05d}.png", seed)
    _pair(base, "Test/Low/low00690.png", "Test/Normal/normal00690.png", 3)
    ds = PairedImageFolder(tmp_path, layout="lol_v2_real", split="train")
    assert ds.names == ["00001", "00002", "00030"] and len(ds) == 3
    _check_pairs(ds)
    assert PairedImageFolder(tmp_path, layout="lol_v2_real", split="test").names == ["00690"]


def test_lol_v2_synthetic_layout(tmp_path: Path) -> None:
    for name, seed in (("r000da5t.png", 1), ("r00a1b2c.png", 2)):
        _pair(tmp_path, f"Train/Low/{name}", f"Train/Normal/{name}", seed)
        _pair(tmp_path / "Synthetic", f"Test/Low/{name}", f"Test/Normal/{name}", seed)
    ds = PairedImageFolder(tmp_path, layout="lol_v2_synthetic")
    assert sorted(ds.names) == ["r000da5t", "r00a1b2c"]
    _check_pairs(ds)
    assert len(PairedImageFolder(tmp_path, layout="lol_v2_synthetic", split="val")) == 2


def test_generic_layout_by_stem_mixed_formats(tmp_path: Path) -> None:
    _pair(tmp_path, "dark/a.png", "bright/a.png", 1)
    _pair(tmp_path, "dark/b.bmp", "bright/b.png", 2)
    _pair(tmp_path, "dark/c.tif", "bright/c.tif", 3)
    (tmp_path / "dark" / "notes.md").write_text("not an image")
    ds = PairedImageFolder(tmp_path, layout="generic", low_dir="dark", high_dir="bright")
    assert ds.names == ["a", "b", "c"]
    _check_pairs(ds)
    (tmp_path / "other").mkdir()
    absolute = PairedImageFolder(
        tmp_path / "other",
        layout="generic",
        low_dir=tmp_path / "dark",
        high_dir=tmp_path / "bright",
    )
    assert absolute.names == ["a", "b", "c"]


def test_one_error_lists_every_unpaired_file_and_size_mismatch(tmp_path: Path) -> None:
    for i in (1, 2, 3, 4):
        _save(tmp_path / "our485/low" / f"{i}.png", _rgb(6, 8, seed=i))
    for i in (1, 2, 5, 6):
        hw = (7, 8) if i == 2 else (6, 8)
        _save(tmp_path / "our485/high" / f"{i}.png", _rgb(*hw, seed=i))
    _save(tmp_path / "our485/low" / "9.png", _rgb(6, 9))
    _save(tmp_path / "our485/high" / "9.png", _rgb(6, 8))
    with pytest.raises(ValueError) as info:
        PairedImageFolder(tmp_path, layout="lol_v1")
    msg = str(info.value)
    for offender in (
        "low/3.png",
        "low/4.png",
        "high/5.png",
        "high/6.png",
        "low/2.png",
        "low/9.png",
    ):
        assert offender in msg, msg
    assert "8x6 vs" in msg and "8x7" in msg and "9x6" in msg
    assert "low/1.png" not in msg


def test_corrupt_file_in_folder_is_named(tmp_path: Path) -> None:
    for i in (1, 2):
        _pair(tmp_path, f"low/{i}.png", f"high/{i}.png", i, hw=(48, 48))
    (tmp_path / "high/2.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"high/2\.png"):
        PairedImageFolder(tmp_path, layout="generic")
    # truncated files whose header survives: named at construction (PNG: the header scan
    # meets the cut) or, at the latest, when the sample is read (JPEG)
    _pair(tmp_path, "low/2.png", "high/2.png", 2, hw=(48, 48))
    data = (tmp_path / "high/1.png").read_bytes()
    (tmp_path / "high/1.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"high/1\.png"):
        PairedImageFolder(tmp_path, layout="generic")
    _pair(tmp_path, "low/1.png", "high/1.png", 1, hw=(48, 48))
    jpg = _save(tmp_path / "jl/1.jpg", _rgb(48, 48))
    _save(tmp_path / "jh/1.jpg", _rgb(48, 48))
    jpg.write_bytes(jpg.read_bytes()[:400])
    with pytest.raises(ValueError, match=r"jl/1\.jpg"):
        PairedImageFolder(tmp_path, layout="generic", low_dir="jl", high_dir="jh")[0]


def test_missing_layout_folder_and_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="Train/Low"):
        PairedImageFolder(tmp_path, layout="lol_v2_real")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        PairedImageFolder(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="lol_v2_synthetic"):
        PairedImageFolder(tmp_path, layout="lol")
    with pytest.raises(ValueError, match="val"):
        PairedImageFolder(tmp_path, split="dev")


def _prompt_folder(root: Path) -> None:
    for i in (1, 2, 3):
        _pair(root, f"our485/low/{i}.png", f"our485/high/{i}.png", i)


def test_prompts_sidecar_txt(tmp_path: Path) -> None:
    _prompt_folder(tmp_path)
    (tmp_path / "our485/low/1.txt").write_text("a dim kitchen\n")
    (tmp_path / "our485/low/3.txt").write_text("night street")
    with pytest.raises(ValueError, match=r"\['2'\]"):
        PairedImageFolder(tmp_path)
    ds = PairedImageFolder(tmp_path, prompt="normal light image")
    assert [ds[i]["prompt"] for i in range(3)] == [
        "a dim kitchen", "normal light image", "night street",
    ]  # fmt: skip
    assert ds.prompts == ["a dim kitchen", "normal light image", "night street"]


def test_prompts_csv_and_json(tmp_path: Path) -> None:
    _prompt_folder(tmp_path)
    with open(tmp_path / "p.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["name", "prompt"], ["1.png", "one, with a comma"], ["2", "two"]])
    (tmp_path / "p.json").write_text(json.dumps({"1": "uno", "2.png": "dos", "3": "tres"}))
    csv_ds = PairedImageFolder(tmp_path, prompts_file=str(tmp_path / "p.csv"), prompt="rest")
    assert [csv_ds[i]["prompt"] for i in range(3)] == ["one, with a comma", "two", "rest"]
    js = PairedImageFolder(tmp_path, prompts_file=tmp_path / "p.json")
    assert [js[i]["prompt"] for i in range(3)] == ["uno", "dos", "tres"]
    one = PairedImageFolder(tmp_path, prompt="normal light image")
    assert {one[i]["prompt"] for i in range(3)} == {"normal light image"}
    (tmp_path / "p.yaml").write_text("1: a")
    with pytest.raises(ValueError, match="csv"):
        PairedImageFolder(tmp_path, prompts_file=tmp_path / "p.yaml")
    with pytest.raises(FileNotFoundError, match="none.json"):
        PairedImageFolder(tmp_path, prompts_file=tmp_path / "none.json")


def test_folder_crop_is_seeded_per_epoch_and_index(tmp_path: Path) -> None:
    for i in (1, 2):
        _pair(tmp_path, f"our485/low/{i}.png", f"our485/high/{i}.png", i, hw=(12, 16))
    ds: Any = build_dataset("lol_v1", root=str(tmp_path), crop=8, seed=3)
    again: Any = build_dataset("lol_v1", root=str(tmp_path), crop=8, seed=3)
    first = [ds[i]["high"] for i in range(2)]
    assert all(torch.equal(a, again[i]["high"]) for i, a in enumerate(first))
    assert first[0].shape == (3, 8, 8)
    _check_pairs(ds)  # the same crop and flips on both images
    changed = False
    for epoch in range(1, 6):
        ds.set_epoch(epoch)
        again.set_epoch(epoch)
        assert torch.equal(ds[0]["low"], again[0]["low"])
        changed |= not torch.equal(ds[0]["high"], first[0])
    assert changed
    with pytest.raises(ValueError, match="larger"):
        build_dataset("lol_v1", root=str(tmp_path), crop=13)


# -- PairedTransform -----------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    crop=st.one_of(st.none(), st.integers(1, 12)),
    seed=st.integers(0, 2**62),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
)
def test_paired_transform_properties(
    h: int, w: int, crop: int | None, seed: int, flags: tuple[bool, bool, bool]
) -> None:
    t = PairedTransform(crop, hflip=flags[0], vflip=flags[1], rot90=flags[2])
    low = torch.arange(3 * h * w, dtype=torch.float32).reshape(3, h, w)
    high = low * 2 + 1
    if crop is not None and crop > min(h, w):
        with pytest.raises(ValueError, match=f"{crop}x{crop}.*{h}x{w}"):
            t(low, high, torch.Generator().manual_seed(seed))
        return
    a = t(low, high, torch.Generator().manual_seed(seed))
    b = t(low, high, torch.Generator().manual_seed(seed))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])  # deterministic
    assert torch.equal(a[1], a[0] * 2 + 1)  # identical geometry on both
    if crop is not None:
        assert a[0].shape == (3, crop, crop)
    else:
        assert a[0].shape in ((3, h, w), (3, w, h)) and (h == w or a[0].shape == (3, h, w))
    # the pixels are a subset of the source's (crop) and all of them without a crop
    values = set(a[0].flatten().tolist())
    assert values <= set(low.flatten().tolist())
    if crop is None:
        assert len(values) == 3 * h * w


def test_paired_transform_uses_all_eight_orientations() -> None:
    x = torch.arange(9.0).reshape(1, 3, 3)
    t = PairedTransform()
    seen = {
        tuple(t(x, x, torch.Generator().manual_seed(s))[0].flatten().tolist()) for s in range(200)
    }
    assert len(seen) == 8  # the dihedral group of the square


def test_paired_transform_bad_input() -> None:
    with pytest.raises(ValueError, match="crop"):
        PairedTransform(crop=0)
    with pytest.raises(ValueError, match="differ"):
        PairedTransform()(torch.rand(3, 4, 4), torch.rand(3, 4, 5), torch.Generator())
    with pytest.raises(TypeError, match="Generator"):
        PairedTransform()(torch.rand(3, 4, 4), torch.rand(3, 4, 4), 0)  # type: ignore[arg-type]


# -- SyntheticLowLight ---------------------------------------------------------------------------
def _sources() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.rand(3, 24, 24, generator=g) * 0.6 + 0.4, torch.rand(3, 20, 28, generator=g)]


def _smoothstep_inverse(y: np.ndarray) -> np.ndarray:
    """Bisection on 3u² - 2u³ = y: an inverse of the tone curve independent of the library."""
    lo, hi = np.zeros_like(y), np.ones_like(y)
    for _ in range(60):
        mid = (lo + hi) / 2
        below = 3 * mid**2 - 2 * mid**3 < y
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return (lo + hi) / 2


def _plain(**kw: Any) -> DegradationConfig:
    """Even white light, no well-exposed samples, no JPEG: exposure and noise alone."""
    return DegradationConfig(
        well_exposed=0.0, illumination=(1.0, 0.0, 0.0, 0.0), light=(1.0, 0.0, 0.0, 0.0, 0.0),
        jpeg=0.0, **kw,
    )  # fmt: skip


def test_synthetic_reproducible_epochs_darker_in_range() -> None:
    dark = DegradationConfig(well_exposed=0.0)
    ds = SyntheticLowLight(
        _sources(), length=6, crop=16, seed=7, config=dark, prompt="normal light image"
    )
    twin = SyntheticLowLight(
        _sources(), length=6, crop=16, seed=7, config=dark, prompt="normal light image"
    )
    items = [ds[i] for i in range(6)]
    for i, s in enumerate(items):
        t = twin[i]
        assert torch.equal(s["low"], t["low"]) and torch.equal(s["high"], t["high"])
        assert s["low"].shape == s["high"].shape == (3, 16, 16)
        assert s["low"].mean() < s["high"].mean()
        assert s["low"].min() >= 0 and s["low"].max() <= 1
        assert s["prompt"] == "normal light image" and isinstance(s["name"], str)
    assert torch.equal(ds[4]["low"], items[4]["low"])  # access order does not matter
    ds.set_epoch(1)
    assert all(not torch.equal(ds[i]["low"], items[i]["low"]) for i in range(6))
    ds.set_epoch(0)
    assert torch.equal(ds[3]["low"], items[3]["low"])
    other = SyntheticLowLight(_sources(), length=6, crop=16, seed=8)
    assert not torch.equal(other[0]["low"], items[0]["low"])
    assert "prompt" not in other[0]


def test_synthetic_length_and_source_cycling() -> None:
    src = _sources()
    ds = SyntheticLowLight(src, augment=False)
    assert len(ds) == 2 and ds[1]["high"].shape == (3, 20, 28)
    assert torch.equal(ds[1]["high"], src[1])  # no crop, no augmentation: the source itself
    long = SyntheticLowLight(src, length=5, augment=False)
    assert len(long) == 5 and torch.equal(long[4]["high"], src[0])  # 4 % 2 == 0


def test_synthetic_recipe_without_noise_is_the_formula() -> None:
    x = torch.linspace(0, 1, 3 * 4 * 4).reshape(3, 4, 4)
    cfg = _plain(stops=(2.0, 2.0), noise_free=1.0)
    ds = SyntheticLowLight([x], config=cfg, augment=False, quantize=False)
    # sRGB -> linear (inverse smoothstep, gamma 2.2), 2 stops down, and back
    lin = _smoothstep_inverse(x.double().numpy()) ** 2.2
    g = (lin / 4) ** (1 / 2.2)
    expected = torch.from_numpy(3 * g**2 - 2 * g**3).float()
    assert torch.allclose(ds[0]["low"], expected, atol=1e-5)
    assert torch.equal(ds[0]["high"], x)
    quantized = SyntheticLowLight([x], config=cfg, augment=False)[0]["low"]  # config's 8 bits
    assert torch.equal(quantized * 255, torch.round(quantized * 255))
    assert torch.allclose(quantized, expected, atol=0.5 / 255 + 1e-6)


def test_synthetic_noise_is_poisson_gaussian_in_linear_light() -> None:
    from textrestore.data.degradation import srgb_to_linear

    flat = [torch.full((3, 64, 64), 0.4), torch.full((3, 64, 64), 0.9)]
    shot = 5e-3
    cfg = _plain(stops=(1.0, 1.0), noise_free=0.0, shot=(shot, shot))
    ds = SyntheticLowLight(flat, config=cfg, quantize=False, augment=False)
    var_dark, var_bright = (float(srgb_to_linear(ds[i]["low"]).var()) for i in (0, 1))
    # variance shot·signal + read²: the difference of two levels is the shot term alone
    # (read noise, drawn per sample, is < 3 % of it here)
    signal = [float(_smoothstep_inverse(np.array(v)) ** 2.2) / 2 for v in (0.4, 0.9)]
    assert var_bright - var_dark == pytest.approx(shot * (signal[1] - signal[0]), rel=0.1)
    assert var_bright > 3 * var_dark


def test_synthetic_from_paths_and_bad_arguments(tmp_path: Path) -> None:
    p = _save(tmp_path / "a.png", _rgb(20, 20))
    ds = SyntheticLowLight([str(p), p], crop=8)
    assert len(ds) == 2 and ds[1]["low"].shape == (3, 8, 8)
    with pytest.raises(ValueError, match="no images"):
        SyntheticLowLight([])
    with pytest.raises(ValueError, match="crop 32x32 is larger"):
        SyntheticLowLight([torch.rand(3, 20, 40)], crop=32)
    with pytest.raises(ValueError, match="stops"):
        SyntheticLowLight([torch.rand(3, 8, 8)], config=DegradationConfig(stops=(3.0, 2.0)))
    with pytest.raises(TypeError, match="DegradationConfig"):
        bad: Any = {"stops": (1.0, 2.0)}
        SyntheticLowLight([torch.rand(3, 8, 8)], config=bad)
    with pytest.raises(TypeError, match="int"):
        SyntheticLowLight([1])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="length"):
        SyntheticLowLight([torch.rand(3, 8, 8)], length=0)


def test_synthetic_in_workers_equals_main_process() -> None:
    from torch.utils.data import DataLoader

    ds = SyntheticLowLight(_sources(), length=4, crop=16, seed=2)
    ds.set_epoch(3)
    main = torch.stack([ds[i]["low"] for i in range(4)])
    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate_pairs)
    assert torch.equal(torch.cat([b["low"] for b in loader]), main)


# -- skimage photos, build_dataset, collate ------------------------------------------------------
def test_skimage_photos_split_disjoint_and_sized() -> None:
    assert set(SKIMAGE_TRAIN).isdisjoint(SKIMAGE_VAL) and len(SKIMAGE_VAL) == 3
    val = skimage_photos("val", size=24)
    train = skimage_photos("train", size=24)
    assert len(val) == 3 and len(train) == len(SKIMAGE_TRAIN) + 1  # stereo pair: two views
    assert all(p.shape[0] == 3 and min(p.shape[1:]) == 24 for p in val + train)
    assert all(p.min() >= 0 and p.max() <= 1 and p.dtype == torch.float32 for p in val + train)
    keys = {tuple(p.flatten()[:64].tolist()) for p in train}
    assert not any(tuple(p.flatten()[:64].tolist()) in keys for p in val)
    assert len(skimage_photos("all", size=24)) == len(train) + len(val)
    original = skimage_photos("val", size=None)
    assert original[0].shape == (3, 512, 512)  # astronaut
    with pytest.raises(ValueError, match="'train', 'val' or 'all'"):
        skimage_photos("test")


def test_skimage_photos_names_the_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "skimage", None)
    with pytest.raises(ImportError, match="scikit-image"):
        skimage_photos("val")


def test_build_dataset_synthetic_and_errors() -> None:
    train: Any = build_dataset("synthetic", crop=16, length=5, size=32, seed=1, prompt="p")
    assert len(train) == 5 and train[0]["low"].shape == (3, 16, 16) and train[0]["prompt"] == "p"
    val: Any = build_dataset("synthetic", split="val", size=32)
    assert len(val) == 3 and val[2]["high"].shape == (3, 32, 32)
    a = val[0]["low"]
    val.set_epoch(5)  # validation does not change with the epoch
    assert torch.equal(val[0]["low"], a)
    for ds in (train, val):
        assert callable(getattr(ds, "set_epoch", None))
    with pytest.raises(ValueError, match="crop 64 is larger than size 32"):
        build_dataset("synthetic", crop=64, size=32)
    # the degradation's ranges reach the dataset: two stops, nothing else, on the photos
    cfg = _plain(stops=(2.0, 2.0), noise_free=1.0, quantize=False)
    plain: Any = build_dataset("synthetic", split="val", size=32, degradation=cfg)
    lin = _smoothstep_inverse(plain[1]["high"].double().numpy()) ** 2.2
    g = (lin / 4) ** (1 / 2.2)
    assert torch.allclose(plain[1]["low"], torch.from_numpy(3 * g**2 - 2 * g**3).float(), atol=1e-5)
    with pytest.raises(TypeError, match="DegradationConfig"):
        build_dataset("synthetic", degradation={"stops": (1, 2)})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lol_v1.*synthetic"):
        build_dataset("sid")
    with pytest.raises(ValueError, match="root"):
        build_dataset("lol_v2_real")
    with pytest.raises(TypeError):
        build_dataset("synthetic", None)  # type: ignore[misc]


def test_collate_shapes_names_prompts() -> None:
    ds = SyntheticLowLight(_sources(), length=3, crop=8, prompt="p")
    batch = collate_pairs([ds[i] for i in range(3)])
    assert batch["low"].shape == batch["high"].shape == (3, 3, 8, 8)
    assert batch["name"] == [ds[i]["name"] for i in range(3)] and batch["prompt"] == ["p"] * 3
    plain = collate_pairs([SyntheticLowLight(_sources(), crop=8)[0]])
    assert "prompt" not in plain and plain["low"].shape == (1, 3, 8, 8)
    with pytest.raises(ValueError, match="different sizes"):
        collate_pairs([ds[0], SyntheticLowLight(_sources(), crop=4)[0]])
    with pytest.raises(ValueError, match="empty"):
        collate_pairs([])

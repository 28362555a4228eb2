"""Tests of textrestore.data: image I/O, paired folders, transforms, synthetic low light."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from textrestore.data import (
    DegradationConfig,
    PairedImageFolder,
    PairedTransform,
    PairingError,
    SyntheticLowLight,
    collate_pairs,
    read_image,
    read_image_array,
    skimage_photos,
    write_image,
)


def _img(h: int = 8, w: int = 10, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _write(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


# -- image I/O ---------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [3, 4, 1])
def test_png16_read_exactly(tmp_path: Path, channels: int) -> None:
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 65536, (7, 9, channels), dtype=np.uint16)
    if channels == 1:
        arr = arr[..., 0]
    p = write_image(tmp_path / "a.png", arr, bit_depth=16)
    got = read_image_array(p)
    assert got.dtype == np.uint16 and got.shape == (7, 9, 3)
    ref = arr[..., None].repeat(3, axis=2) if channels == 1 else arr[..., :3]
    np.testing.assert_array_equal(got, ref)
    t = read_image(p)
    assert torch.allclose(t, torch.from_numpy(ref.astype(np.float32) / 65535).permute(2, 0, 1))


@pytest.mark.parametrize("filter_png", [True])
def test_png16_all_filters(tmp_path: Path, filter_png: bool) -> None:
    # PNGs written by another encoder (imageio via Pillow for grey 16-bit uses adaptive filters)
    arr = (np.add.outer(np.arange(20), np.arange(30)) * 97 % 65536).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "g.png")  # Pillow: I;16 grey, filtered rows
    np.testing.assert_array_equal(read_image_array(tmp_path / "g.png")[..., 0], arr)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".jpg"])
def test_8bit_formats_roundtrip(tmp_path: Path, ext: str) -> None:
    arr = _img(6, 5)
    p = write_image(tmp_path / f"x{ext}", arr)
    got = read_image_array(p)
    assert got.dtype == np.uint8 and got.shape == (6, 5, 3)
    if ext != ".jpg":
        np.testing.assert_array_equal(got, arr)
    else:
        assert np.abs(got.astype(int) - arr).mean() < 40


def test_grey_rgba_and_exif(tmp_path: Path) -> None:
    grey = _img()[..., 0]
    Image.fromarray(grey).save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_image_array(tmp_path / "g.png"), np.stack([grey] * 3, -1))
    rgba = np.concatenate([_img(), np.full((8, 10, 1), 7, np.uint8)], axis=-1)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image_array(tmp_path / "a.png"), rgba[..., :3])
    im = Image.fromarray(_img(4, 6))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 CW to display
    im.save(tmp_path / "e.jpg", exif=exif)
    assert read_image_array(tmp_path / "e.jpg").shape == (6, 4, 3)


def test_unreadable_names_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="broken.png"):
        read_image(bad)
    _write(tmp_path / "ok.png", _img(32, 32))
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="trunc.png"):
        read_image(tmp_path / "trunc.png")
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_image(tmp_path / "nope.png")


# -- paired folders ------------------------------------------------------------------------------
def _lol_v1(root: Path, n: int = 3) -> None:
    for split in ("our485", "eval15"):
        for i in range(1, n + 1):
            _write(root / split / "low" / f"{i}.png", _img(seed=i) // 4)
            _write(root / split / "high" / f"{i}.png", _img(seed=i))


def test_lol_v1_pairing(tmp_path: Path) -> None:
    _lol_v1(tmp_path, 12)
    ds = PairedImageFolder(tmp_path, "lol_v1", "test")
    assert len(ds) == 12 and ds.names[:3] == ["1", "2", "3"] and ds.names[-1] == "12"
    s = ds[1]
    assert s["name"] == "2" and "prompt" not in s
    np.testing.assert_allclose(s["high"].permute(1, 2, 0).numpy(), _img(seed=2) / 255, atol=1e-6)


def test_lol_v2_layouts(tmp_path: Path) -> None:
    for split in ("Train", "Test"):
        for i in (1, 2):
            _write(tmp_path / "Real_captured" / split / "Low" / f"low{i:05d}.png", _img(seed=i))
            _write(
                tmp_path / "Real_captured" / split / "Normal" / f"normal{i:05d}.png", _img(seed=i)
            )
            _write(tmp_path / "Synthetic" / split / "Low" / f"r{i}.png", _img(seed=i))
            _write(tmp_path / "Synthetic" / split / "Normal" / f"r{i}.png", _img(seed=i))
    real = PairedImageFolder(tmp_path, "lol_v2_real", "train")
    assert [p[0].name for p in real.pairs] == ["low00001.png", "low00002.png"]
    assert [p[1].name for p in real.pairs] == ["normal00001.png", "normal00002.png"]
    syn = PairedImageFolder(tmp_path, "lol_v2_synthetic", "test")
    assert len(syn) == 2


def test_unpaired_and_size_mismatch_listed_together(tmp_path: Path) -> None:
    for i in range(1, 6):
        _write(tmp_path / "low" / f"{i}.png", _img(seed=i))
    for i in (1, 2, 3, 7, 8):
        size = (9, 10) if i in (2, 3) else (8, 10)
        _write(tmp_path / "high" / f"{i}.png", _img(*size, seed=i))
    with pytest.raises(PairingError) as info:
        PairedImageFolder(tmp_path, "generic")
    msg = str(info.value)
    for name in ("low/4.png", "low/5.png", "high/7.png", "high/8.png", "low/2.png", "low/3.png"):
        assert name in msg, msg
    assert "10x8 vs" in msg
    err = info.value
    assert len(err.unpaired_low) == 2 and len(err.unpaired_high) == 2
    assert len(err.size_mismatches) == 2


def test_missing_folder_and_bad_layout(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="our485/low"):
        PairedImageFolder(tmp_path, "lol_v1")
    with pytest.raises(ValueError, match="lol_v2_real"):
        PairedImageFolder(tmp_path, "lol3")


def test_corrupt_file_error(tmp_path: Path) -> None:
    _lol_v1(tmp_path, 2)
    (tmp_path / "our485" / "high" / "2.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="2.png"):
        PairedImageFolder(tmp_path, "lol_v1")


def test_prompts_json_csv_sidecar(tmp_path: Path) -> None:
    _lol_v1(tmp_path, 3)
    (tmp_path / "p.json").write_text(json.dumps({"1.png": "dim room", "2": "night street"}))
    ds = PairedImageFolder(tmp_path, prompts=tmp_path / "p.json", prompt="default")
    assert [ds[i]["prompt"] for i in range(3)] == ["dim room", "night street", "default"]
    with pytest.raises(ValueError, match="no prompt"):
        PairedImageFolder(tmp_path, prompts=tmp_path / "p.json")
    (tmp_path / "p.csv").write_text("name,prompt\n1,a\n2,b\n3,c\n")
    assert PairedImageFolder(tmp_path, prompts=tmp_path / "p.csv")[2]["prompt"] == "c"
    for i in (1, 2, 3):
        (tmp_path / "our485" / "low" / f"{i}.txt").write_text(f"prompt {i}\n")
    assert PairedImageFolder(tmp_path, prompts_file="sidecar")[0]["prompt"] == "prompt 1"
    assert PairedImageFolder(tmp_path)[2]["prompt"] == "prompt 3"  # sidecars found unasked
    for i in (1, 2, 3):
        (tmp_path / "our485" / "low" / f"{i}.txt").unlink()
    one = PairedImageFolder(tmp_path, prompt="normal light image")
    batch = collate_pairs([one[0], one[1]])
    assert batch["prompt"] == ["normal light image"] * 2 and batch["name"] == ["1", "2"]


def test_paired_transform_deterministic_and_aligned(tmp_path: Path) -> None:
    _lol_v1(tmp_path, 2)
    ds = PairedImageFolder(tmp_path, crop=6, seed=5)
    a, b = ds[0], ds[0]
    assert torch.equal(a["low"], b["low"]) and a["low"].shape == (3, 6, 6)
    # identical geometry on both images: the low image of this fake set is high // 4
    assert torch.allclose(a["low"] * 255, torch.floor(a["high"] * 255 / 4), atol=1e-3)
    seen = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        seen.add(ds[0]["high"].sum().item())
    assert len(seen) > 1  # crops change with the epoch
    t = PairedTransform(crop=None, hflip=False, rot90=True)
    x = torch.rand(3, 4, 6)
    lo, hi = t(x, x.clone(), torch.Generator().manual_seed(0))
    assert lo.shape == (3, 4, 6) and torch.equal(lo, hi)


# -- synthetic low light ---------------------------------------------------------------------
def test_synthetic_deterministic_and_darker() -> None:
    photos = [torch.rand(3, 40, 40) * 0.5 + 0.5, torch.rand(3, 36, 48)]
    dark = DegradationConfig(well_exposed=0.0)  # the training mix, no identity samples
    ds = SyntheticLowLight(photos, crop=32, length=8, seed=3, config=dark)
    ds2 = SyntheticLowLight(photos, crop=32, length=8, seed=3, config=dark)
    for i in range(8):
        a, b = ds[i], ds2[i]
        assert torch.equal(a["low"], b["low"]) and torch.equal(a["high"], b["high"])
        assert a["low"].mean() < 0.75 * a["high"].mean()
        assert a["low"].min() >= 0 and a["low"].max() <= 1
    other = SyntheticLowLight(photos, crop=32, length=8, seed=4, config=dark)
    assert not torch.equal(other[0]["low"], ds[0]["low"])
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["low"], ds2[0]["low"])
    with pytest.raises(TypeError, match="DegradationConfig"):
        SyntheticLowLight(photos, config={"stops": (1.0, 2.0)})  # type: ignore[arg-type]


def test_synthetic_in_dataloader_workers_equal_main() -> None:
    ds = SyntheticLowLight([torch.rand(3, 20, 20)], crop=16, length=6, seed=1, prompt="p")
    main = [ds[i]["low"] for i in range(6)]
    loader = DataLoader(ds, batch_size=3, num_workers=2, collate_fn=collate_pairs)
    got = torch.cat([b["low"] for b in loader])
    assert torch.equal(got, torch.stack(main))


def test_skimage_photos_holdout() -> None:
    val = skimage_photos("val", size=64)
    assert len(val) == 3 and all(p.shape[0] == 3 and min(p.shape[1:]) == 64 for p in val)
    with pytest.raises(ValueError, match="split"):
        skimage_photos("test")


def _encode_png16_filtered(arr: np.ndarray) -> bytes:
    """A reference 16-bit RGB PNG encoder using filter type (row % 5) (spec section 9)."""
    import struct
    import zlib

    h, w, c = arr.shape
    bpp = 2 * c
    rows = arr.astype(">u2").reshape(h, w * c).view(np.uint8).astype(int)
    out = bytearray()
    prev = np.zeros(w * bpp, dtype=int)
    for y in range(h):
        ftype, cur = y % 5, rows[y]
        enc = []
        for x in range(w * bpp):
            a = cur[x - bpp] if x >= bpp else 0
            b = prev[x]
            cc = prev[x - bpp] if x >= bpp else 0
            if ftype == 0:
                pred = 0
            elif ftype == 1:
                pred = a
            elif ftype == 2:
                pred = b
            elif ftype == 3:
                pred = (a + b) // 2
            else:
                p = a + b - cc
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - cc)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else cc)
            enc.append((cur[x] - pred) % 256)
        out += bytes([ftype, *enc])
        prev = cur

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2 if c == 3 else 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(out)))
        + chunk(b"IEND", b"")
    )


def test_png16_decoder_every_filter(tmp_path: Path) -> None:
    arr = np.random.default_rng(2).integers(0, 65536, (10, 7, 3), dtype=np.uint16)
    (tmp_path / "f.png").write_bytes(_encode_png16_filtered(arr))
    np.testing.assert_array_equal(read_image_array(tmp_path / "f.png"), arr)


def test_build_dataset_kinds(tmp_path: Path) -> None:
    from textrestore.data import build_dataset

    _lol_v1(tmp_path, 2)
    tr = build_dataset("lol_v1", root=tmp_path, crop=4, prompt="p")
    te = build_dataset("lol_v1", root=tmp_path, split="test", crop=4)
    assert tr[0]["low"].shape == (3, 4, 4) and tr[0]["prompt"] == "p"
    assert te[0]["low"].shape == (3, 4, 4)  # held out: centre crop
    full = build_dataset("lol_v1", root=tmp_path, split="val")
    assert full[0]["low"].shape == (3, 8, 10)
    syn = build_dataset("synthetic", root=tmp_path / "our485" / "high", crop=6, length=5)
    assert len(syn) == 5 and syn[4]["high"].shape == (3, 6, 6)
    with pytest.raises(ValueError, match="lol_v1"):
        build_dataset("lol9", root=tmp_path)
    with pytest.raises(ValueError, match="root"):
        build_dataset("generic")


def test_hidden_files_are_not_images(tmp_path: Path) -> None:
    from textrestore.data import is_image_file

    assert is_image_file(tmp_path / "a.PNG") and is_image_file("x/b.webp")
    assert not is_image_file(tmp_path / "._a.png")  # macOS resource fork
    assert not is_image_file(tmp_path / ".a.123.tmp.png")  # an interrupted atomic write
    assert not is_image_file(tmp_path / "notes.txt")


def test_write_image_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails halfway leaves the previous file and no temporary behind."""
    target = tmp_path / "x.png"
    write_image(target, np.zeros((4, 5, 3), np.uint8))
    before = target.read_bytes()

    def broken_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        Path(str(fp)).write_bytes(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_image(target, np.ones((4, 5, 3), np.uint8))
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]

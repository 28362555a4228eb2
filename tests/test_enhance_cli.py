"""`textrestore enhance`: folders, bad files, summary, exit codes, --skip-existing, --help."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from textrestore.cli import build_parser, main


def _photos(folder):
    rng = np.random.default_rng(0)
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 60, (24, 31, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 60, (17, 20, 3), dtype=np.uint8)).save(folder / "sub" / "b.jpg")
    Image.fromarray(rng.integers(0, 60, (9, 9), dtype=np.uint8)).save(folder / "gray.bmp")
    good = (folder / "a.png").read_bytes()
    (folder / "corrupt.png").write_bytes(good[: len(good) // 3])  # truncated PNG
    (folder / "fake.jpg").write_bytes(b"this is not a jpeg")
    (folder / "notes.txt").write_text("not an image")
    (folder / "._a.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")


def test_folder_with_bad_files(tmp_path, tiny_weights, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    _photos(src)
    code = main(["enhance", str(src), "-o", str(out), "--weights", tiny_weights, "-q"])
    captured = capsys.readouterr()
    assert code == 1
    assert (out / "a.png").is_file() and (out / "sub" / "b.png").is_file()
    assert (out / "gray.png").is_file()
    assert Image.open(out / "a.png").size == (31, 24)
    assert "corrupt.png" in captured.err and "fake.jpg" in captured.err
    assert "enhanced 3" in captured.out and "failed 2" in captured.out
    assert "ignored 2 non-image" in captured.out
    assert not (out / "corrupt.png").exists()

    # --skip-existing: nothing is redone; the bad files still fail
    mtime = (out / "a.png").stat().st_mtime_ns
    code = main(["enhance", str(src), "-o", str(out), "--weights", tiny_weights, "-q",
                 "--skip-existing"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1 and "skipped 3 existing" in captured.out
    assert (out / "a.png").stat().st_mtime_ns == mtime


def test_explicit_files_ext_and_tiles(tmp_path, tiny_weights, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    _photos(src)
    code = main(["enhance", str(src / "a.png"), str(src / "sub" / "b.jpg"), "-o", str(out),
                 "--weights", tiny_weights, "--ext", "jpg", "--tile", "16", "--overlap", "4",
                 "--device", "cpu", "-q"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [".textrestore-enhance.jsonl", "a.jpg", "b.jpg"]
    # a non-image given explicitly is a failure; a missing path too
    code = main(["enhance", str(src / "notes.txt"), str(src / "nope.png"), "-o", str(out),
                 "--weights", tiny_weights, "-q"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "notes.txt" in err and "nope.png" in err


def test_no_inputs_and_bad_weights(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["enhance", str(tmp_path / "empty"), "-o", str(tmp_path / "o")]) == 2
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "x.png")
    code = main(["enhance", str(tmp_path / "x.png"), "-o", str(tmp_path / "o"),
                 "--weights", str(tmp_path / "missing.safetensors")])  # fmt: skip
    assert code == 2 and "missing.safetensors" in capsys.readouterr().err


def test_help_is_complete(capsys):
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["enhance", "--help"])
    text = capsys.readouterr().out
    for flag in ("--weights", "--model", "--prompt", "--tile", "--device", "--precision",
                 "--skip-existing", "--ext", "-o"):  # fmt: skip
        assert flag in text
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    top = capsys.readouterr().out
    for cmd in ("demo", "enhance", "export", "models"):
        assert cmd in top
    with pytest.raises(SystemExit):
        parser.parse_args(["enhance", "x.png", "--tile", "big"])


def test_tile_auto_with_memory_budget(tmp_path, tiny_weights, capsys, monkeypatch):
    import textrestore.inference as inference

    seen = []
    real = inference.auto_tile_size

    def spy(*args, **kwargs):
        seen.append(args[3])  # the activation budget after what the process holds
        return real(*args, **kwargs)

    monkeypatch.setattr(inference, "auto_tile_size", spy)
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(src / "a.png")
    args = ["enhance", str(src), "-o", str(out), "--weights", tiny_weights, "-q", "--tile", "auto"]
    assert main([*args, "--memory-gb", "64"]) == 0
    assert Image.open(out / "a.png").size == (50, 40)
    assert len(seen) == 1 and 60 * 2**30 < seen[0] < 64 * 2**30
    for bad in ("0", "-1", "lots"):
        with pytest.raises(SystemExit):
            main([*args, "--memory-gb", bad])
        assert "--memory-gb" in capsys.readouterr().err


@pytest.mark.parametrize("bits", [8, 16])
def test_api_and_cli_give_identical_pixels(tmp_path, tiny_weights, bits):
    """enhance(path) and `textrestore enhance` share one conversion: same pixels, same depth."""
    from textrestore.data import read_image_array, write_image
    from textrestore.inference import enhance, load_model

    rng = np.random.default_rng(bits)
    peak = 255 if bits == 8 else 65535
    arr = rng.integers(0, peak // 4, (23, 29, 3)).astype(np.uint8 if bits == 8 else np.uint16)
    src = write_image(tmp_path / "in" / "x.png", arr, bit_depth=bits)
    out_dir = tmp_path / "out"
    assert main(["enhance", str(src), "-o", str(out_dir), "--weights", tiny_weights, "-q"]) == 0
    written = read_image_array(out_dir / "x.png")
    api = np.asarray(enhance(src, model=load_model(tiny_weights), device="cpu"))
    assert written.dtype == api.dtype == arr.dtype
    assert np.array_equal(written, api)


@pytest.mark.parametrize("ext", ["png", "jpg", "webp", "png16"])
def test_exif_and_icc_profile_are_kept(tmp_path, tiny_weights, ext):
    """EXIF tags and the ICC profile survive enhance; the orientation is applied to the
    pixels once and reset to 1 in the output (so viewers do not rotate it again)."""
    from PIL import ImageCms

    from textrestore.data import write_image
    from textrestore.data.image_io import ImageMetadata

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    exif[0x0112] = 6  # rotate 90° clockwise to display
    src = tmp_path / "in" / ("photo.png" if ext == "png16" else "photo.jpg")
    arr = np.random.default_rng(0).integers(0, 60, (20, 32, 3))
    if ext == "png16":
        write_image(src, (arr * 257).astype(np.uint16), bit_depth=16,
                    metadata=ImageMetadata(exif=exif.tobytes(), icc_profile=icc))  # fmt: skip
    else:
        src.parent.mkdir(parents=True)
        Image.fromarray(arr.astype(np.uint8)).save(src, exif=exif.tobytes(), icc_profile=icc)
    out_ext = "png" if ext == "png16" else ext
    out = tmp_path / "out"
    code = main(["enhance", str(src), "-o", str(out), "--weights", tiny_weights, "-q",
                 "--ext", out_ext])  # fmt: skip
    assert code == 0
    (written,) = out.glob(f"photo.{out_ext}")
    with Image.open(written) as im:
        assert im.info.get("icc_profile") == icc
        tags = im.getexif()
        assert tags.get(0x010F) == "TestCam"
        assert tags.get(0x0112, 1) == 1
        assert im.size == (20, 32)  # rotated once, by the reader

"""Issue 13: `textrestore enhance` never loses a photo and never falls over.

Every way we know to make an output hit an input; unique, stable output names and a
``--skip-existing`` that cannot confuse two inputs; checks before the first image; one
line (never a traceback) for bad weights, configs and options; Ctrl-C; memory errors per
file; NaN/Inf and out-of-range floats; PIL modes; the automatic whole/tiled choice; the
bounded prompt bank.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from textrestore import create_model
from textrestore.cli import main
from textrestore.commands.enhance import MANIFEST, name_outputs
from textrestore.text import PromptBank, TextEmbedding, TextEncoder

# -- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny() -> nn.Module:
    model = create_model("nalsuper_t", text_dim=8).eval()
    emb = TextEmbedding(torch.randn(1, 3, 8), torch.ones(1, 3, dtype=torch.bool), torch.zeros(1, 8))
    model.prompt_bank.add("normal light image", emb)
    return model


def _photo(path: Path, h: int = 12, w: int = 16, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 80, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _digest(folder: Path) -> dict[str, str]:
    """Checksums of every file below ``folder`` (links: of their target)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "weights_only=False" not in err
    return lines[0]


# -- 1. never overwrite an input -------------------------------------------------------
def _case_same_folder(tmp: Path) -> tuple[list[str], Path]:
    _photo(tmp / "d" / "photo.png")
    return [str(tmp / "d" / "photo.png"), "-o", str(tmp / "d")], tmp / "d"


def _case_dot_in_folder(tmp: Path) -> tuple[list[str], Path]:
    _photo(tmp / "d" / "photo.png")
    os.chdir(tmp / "d")
    return ["photo.png", "-o", "."], tmp / "d"


def _case_dotdot_path(tmp: Path) -> tuple[list[str], Path]:
    _photo(tmp / "d" / "photo.png")
    (tmp / "d" / "sub").mkdir()
    return [str(tmp / "d" / "photo.png"), "-o", str(tmp / "d" / "sub" / "..")], tmp / "d"


def _case_input_is_link(tmp: Path) -> tuple[list[str], Path]:
    _photo(tmp / "real" / "photo.jpg")
    (tmp / "d").mkdir()
    (tmp / "d" / "link.png").symlink_to(tmp / "real" / "photo.jpg")
    return [str(tmp / "d" / "link.png"), "-o", str(tmp / "d")], tmp


def _case_output_links_to_input(tmp: Path) -> tuple[list[str], Path]:
    _photo(tmp / "d" / "photo.png")
    (tmp / "out").mkdir()
    (tmp / "out" / "photo.png").symlink_to(tmp / "d" / "photo.png")
    return [str(tmp / "d" / "photo.png"), "-o", str(tmp / "out")], tmp


def _case_output_folder_is_link(tmp: Path) -> tuple[list[str], Path]:
    _photo(tmp / "d" / "photo.png")
    (tmp / "alias").symlink_to(tmp / "d")
    return [str(tmp / "d" / "photo.png"), "-o", str(tmp / "alias")], tmp / "d"


def _case_hard_link(tmp: Path) -> tuple[list[str], Path]:
    _photo(tmp / "d" / "photo.png")
    (tmp / "out").mkdir()
    os.link(tmp / "d" / "photo.png", tmp / "out" / "photo.png")
    return [str(tmp / "d" / "photo.png"), "-o", str(tmp / "out")], tmp


def _case_other_letter_case(tmp: Path) -> tuple[list[str], Path]:
    _photo(tmp / "d" / "Photo.PNG")
    return [str(tmp / "d" / "Photo.PNG"), "-o", str(tmp / "d")], tmp / "d"


def _case_linked_input_in_folder(tmp: Path) -> tuple[list[str], Path]:
    # an input folder holds a link to a photo that sits where its output would go
    _photo(tmp / "out" / "a.png")
    (tmp / "src").mkdir()
    (tmp / "src" / "a.png").symlink_to(tmp / "out" / "a.png")
    return [str(tmp / "src"), "-o", str(tmp / "out")], tmp


def _case_out_is_the_file(tmp: Path) -> tuple[list[str], Path]:
    _photo(tmp / "d" / "photo.png")
    return [str(tmp / "d" / "photo.png"), "-o", str(tmp / "d" / "photo.png")], tmp / "d"


HIT_INPUT = [
    _case_same_folder,
    _case_dot_in_folder,
    _case_dotdot_path,
    _case_input_is_link,
    _case_output_links_to_input,
    _case_output_folder_is_link,
    _case_hard_link,
    _case_other_letter_case,
    _case_linked_input_in_folder,
    _case_out_is_the_file,
]


@pytest.mark.parametrize("case", HIT_INPUT, ids=[c.__name__[6:] for c in HIT_INPUT])
@pytest.mark.parametrize("flags", [[], ["--overwrite"], ["--skip-existing"]])
def test_an_output_never_replaces_an_input(
    case, flags, tmp_path, tiny_weights, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    argv, root = case(tmp_path)
    before = _digest(root)
    links = {p: os.readlink(p) for p in tmp_path.rglob("*") if p.is_symlink()}
    code = main(["enhance", *argv, "--weights", tiny_weights, "-q", *flags])
    err = capsys.readouterr().err
    assert code == 2, err
    line = _one_line(err)  # refused before any work (or: nothing of ours to enhance)
    assert any(k in line for k in ("refusing", "existing file", "no image files")), line
    assert _digest(root) == before
    assert {p: os.readlink(p) for p in tmp_path.rglob("*") if p.is_symlink()} == links
    assert not list(tmp_path.rglob(MANIFEST))


def test_folder_into_itself_is_not_reprocessed(tmp_path, tiny_weights, capsys):
    _photo(tmp_path / "d" / "photo.png")
    before = _digest(tmp_path / "d")
    code = main(["enhance", str(tmp_path / "d"), "-o", str(tmp_path / "d"), "--weights",
                 tiny_weights, "-q"])  # fmt: skip
    assert code == 2 and "no image files" in _one_line(capsys.readouterr().err)
    assert _digest(tmp_path / "d") == before


def test_an_existing_file_we_did_not_write_is_kept(tmp_path, tiny_weights, capsys):
    src = _photo(tmp_path / "d" / "photo.jpg", 10, 14)
    mine = _photo(tmp_path / "d" / "photo.png", 30, 40, seed=3)  # the user's other photo
    before = _digest(tmp_path / "d")
    args = ["enhance", str(src), "-o", str(tmp_path / "d"), "--weights", tiny_weights, "-q"]
    assert main(args) == 2
    assert "did not write" in _one_line(capsys.readouterr().err)
    assert main([*args, "--skip-existing"]) == 0
    assert _digest(tmp_path / "d") == before  # kept; nothing else to do
    assert main([*args, "--overwrite"]) == 0
    assert Image.open(mine).size == (14, 10)  # replaced on request: photo.jpg's result


# -- naming ----------------------------------------------------------------------------
def test_colliding_stems_keep_their_extension(tmp_path, tiny_weights, capsys):
    d, out = tmp_path / "d", tmp_path / "out"
    _photo(d / "pic.jpg", 10, 11)
    _photo(d / "pic.png", 12, 13)
    _photo(d / "other.bmp", 14, 15)
    assert main(["enhance", str(d), "-o", str(out), "--weights", tiny_weights, "-q"]) == 0
    sizes = {p.name: Image.open(p).size for p in out.iterdir() if not p.name.startswith(".")}
    assert sizes == {"pic.jpg.png": (11, 10), "pic.png.png": (13, 12), "other.png": (15, 14)}
    # a third "pic" and --skip-existing: the new one is made, nothing is confused
    _photo(d / "pic.bmp", 16, 17)
    code = main(["enhance", str(d), "-o", str(out), "--weights", tiny_weights, "-q",
                 "--skip-existing"])  # fmt: skip
    assert code == 0 and "skipped 3 existing" in capsys.readouterr().out
    assert Image.open(out / "pic.bmp.png").size == (17, 16)


def test_skip_existing_never_takes_another_inputs_result(tmp_path, tiny_weights, capsys):
    """The issue's case: pic.jpg alone, then pic.png and pic.bmp join; and a same-named
    input from another folder replaces a recorded output rather than being skipped."""
    d, out = tmp_path / "d", tmp_path / "out"
    _photo(d / "pic.jpg", 10, 11)
    args = ["--weights", tiny_weights, "-q", "--skip-existing"]
    assert main(["enhance", str(d), "-o", str(out), *args]) == 0
    assert Image.open(out / "pic.png").size == (11, 10)
    _photo(d / "pic.png", 12, 13)
    _photo(d / "pic.bmp", 14, 15)
    assert main(["enhance", str(d), "-o", str(out), *args]) == 0
    assert Image.open(out / "pic.jpg.png").size == (11, 10)
    assert Image.open(out / "pic.png.png").size == (13, 12)
    assert Image.open(out / "pic.bmp.png").size == (15, 14)
    other = _photo(tmp_path / "e" / "pic.jpg", 20, 21)
    assert main(["enhance", str(other), "-o", str(out), *args]) == 0
    assert Image.open(out / "pic.png").size == (21, 20)  # redone for this input, not skipped
    capsys.readouterr()


def test_names_are_unique_stable_and_ignore_order(tmp_path):
    items = [(tmp_path / "a" / "pic.jpg", Path("pic.jpg")),
             (tmp_path / "b" / "pic.jpg", Path("pic.jpg")),
             (tmp_path / "a" / "PIC.png", Path("PIC.png")),
             (tmp_path / "a" / "x.png", Path("x.png")),
             (tmp_path / "a" / "pic.png.jpg", Path("pic.png.jpg"))]  # fmt: skip
    out = tmp_path / "out"
    one = dict(name_outputs(items, out, ".png"))
    two = dict(name_outputs(items[::-1], out, ".png"))
    assert one == two
    names = [p.name for p in one.values()]
    assert len({n.casefold() for n in names}) == len(names)
    assert one[tmp_path / "a" / "x.png"].name == "x.png"
    # PIC.png collides with pic.jpg (pic.png), then with pic.png.jpg (pic.png.png)
    assert one[tmp_path / "a" / "PIC.png"].name.startswith("PIC.png.")
    assert one[tmp_path / "a" / "pic.png.jpg"].name == "pic.png.jpg.png"
    assert dict(name_outputs(items[3:], out, ".png"))[tmp_path / "a" / "x.png"].name == "x.png"
    a, b = one[tmp_path / "a" / "pic.jpg"].name, one[tmp_path / "b" / "pic.jpg"].name
    assert a != b and a.startswith("pic.jpg.") and b.startswith("pic.jpg.")


def test_same_file_twice_and_links_in_folders(tmp_path, tiny_weights, capsys):
    d, out = tmp_path / "d", tmp_path / "out"
    src = _photo(d / "a.png")
    (d / "dangling.png").symlink_to(d / "gone.png")
    (d / "loop1.png").symlink_to(d / "loop2.png")
    (d / "loop2.png").symlink_to(d / "loop1.png")
    code = main(["enhance", str(src), str(src), str(d), "-o", str(out), "--weights",
                 tiny_weights, "-q"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert "enhanced 1," in captured.out and "failed 3" in captured.out
    for name in ("dangling.png", "loop1.png", "loop2.png"):
        assert name in captured.err


# -- 2. checks before working ----------------------------------------------------------
def test_unwritable_output_folder_is_one_line_before_work(tmp_path, tiny_weights, capsys):
    src = _photo(tmp_path / "a.png")
    (tmp_path / "file.txt").write_text("x")
    code = main(["enhance", str(src), "-o", str(tmp_path / "file.txt" / "sub"), "--weights",
                 tiny_weights, "-q"])  # fmt: skip
    assert code == 2 and "cannot write to the output folder" in _one_line(capsys.readouterr().err)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_line_before_work(tmp_path, tiny_weights, capsys):
    src = _photo(tmp_path / "a.png")
    code = main(["enhance", str(src), "-o", str(tmp_path / "out"), "--weights", tiny_weights,
                 "--device", "cuda", "-q"])  # fmt: skip
    assert code == 2 and "CUDA is not available" in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def _bad_weights(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    files["text"] = folder / "text.pt"
    files["text"].write_text("these are not weights\n")
    files["empty"] = folder / "empty.safetensors"
    files["empty"].write_bytes(b"")
    good = folder / "good.pt"
    torch.save({"stem.weight": torch.zeros(2)}, good)
    files["truncated_pt"] = folder / "truncated.pt"
    files["truncated_pt"].write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    files["fake_safetensors"] = folder / "fake.safetensors"
    files["fake_safetensors"].write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    files["pickle"] = folder / "pickle.pt"
    files["pickle"].write_bytes(pickle.dumps(Path("/etc/passwd")))
    files["wrong_model"] = good
    return files


BAD_WEIGHTS = ["text", "empty", "truncated_pt", "fake_safetensors", "pickle", "wrong_model"]


@pytest.mark.parametrize("kind", BAD_WEIGHTS)
def test_bad_weights_are_one_line(kind, tmp_path, capsys):
    weights = _bad_weights(tmp_path / "w")[kind]
    src = _photo(tmp_path / "a.png")
    code = main(["enhance", str(src), "-o", str(tmp_path / "out"), "--weights", str(weights),
                 "--model", "nalsuper_t", "-q"])  # fmt: skip
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and weights.name in line
    assert not list((tmp_path / "out").glob("*.png"))
    (tmp_path / "data").mkdir()
    code = main(["eval", "--weights", str(weights), "--data", str(tmp_path / "data"),
                 "--layout", "generic", "--model", "nalsuper_t"])  # fmt: skip
    assert code == 2 and weights.name in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("name", "fmt"), [("noext", "onnx"), ("m.onnx", "torchscript"), ("m.pt", "exported-program")]
)
def test_export_suffix_must_match_format(name, fmt, tmp_path, tiny_weights, capsys):
    out = tmp_path / name
    code = main(["export", "--weights", tiny_weights, "--format", fmt, "-o", str(out)])
    assert code == 2 and "--format" in _one_line(capsys.readouterr().err)
    assert not out.exists()


def test_malformed_yaml_models_height_and_demo_out(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("steps: [1, 2\nlr: : x\n")
    assert main(["train", "--config", str(cfg)]) == 2
    assert "not valid YAML" in _one_line(capsys.readouterr().err)
    assert main(["models", "--height", "0"]) == 2
    assert ">= 1" in _one_line(capsys.readouterr().err)
    (tmp_path / "taken").write_text("x")
    assert main(["demo", "--out", str(tmp_path / "taken")]) == 2
    assert "existing file" in _one_line(capsys.readouterr().err)
    assert (tmp_path / "taken").read_text() == "x"


# -- Ctrl-C, memory errors, stale temporaries ------------------------------------------
def test_ctrl_c_keeps_finished_files_and_removes_the_partial_one(
    tmp_path, tiny_weights, capsys, monkeypatch
):
    import textrestore.data as data
    from textrestore._atomic import atomic_path

    d, out = tmp_path / "d", tmp_path / "out"
    for i in range(3):
        _photo(d / f"p{i}.png", seed=i)
    real = data.write_image
    calls = []

    def write_then_interrupt(path, image, bit_depth=8, metadata=None):
        calls.append(path)
        if len(calls) == 2:
            with atomic_path(path) as tmp:
                tmp.write_bytes(b"half a png")
                raise KeyboardInterrupt
        return real(path, image, bit_depth, metadata)

    monkeypatch.setattr(data, "write_image", write_then_interrupt)
    code = main(["enhance", str(d), "-o", str(out), "--weights", tiny_weights, "-q"])
    captured = capsys.readouterr()
    assert code == 130
    assert "interrupted" in captured.out and "enhanced 1," in captured.out
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "p0.png"]
    assert Image.open(out / "p0.png").size == (16, 12)
    assert "Traceback" not in captured.err


def test_memory_error_is_per_file_and_the_batch_goes_on(
    tmp_path, tiny_weights, capsys, monkeypatch
):
    import textrestore.inference as inference

    d, out = tmp_path / "d", tmp_path / "out"
    for i in range(3):
        _photo(d / f"p{i}.png", 10 + i, 20, seed=i)
    real = inference.enhance

    def fails_on_the_middle(image, **kwargs):
        if image.shape[0] == 11:
            raise RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory: 43 GB")
        return real(image, **kwargs)

    monkeypatch.setattr(inference, "enhance", fails_on_the_middle)
    code = main(["enhance", str(d), "-o", str(out), "--weights", tiny_weights, "-q"])
    captured = capsys.readouterr()
    assert code == 1 and "enhanced 2," in captured.out and "failed 1" in captured.out
    assert "p1.png" in captured.err and "out of memory" in captured.err
    assert (out / "p0.png").is_file() and (out / "p2.png").is_file()


def test_temporaries_of_a_killed_run_are_removed(tmp_path, tiny_weights):
    src, out = _photo(tmp_path / "a.png"), tmp_path / "out"
    out.mkdir()
    stale = out / f".a.{2**22 + 12345}.tmp.png"  # a pid above pid_max: no such process
    stale.write_bytes(b"half")
    alive = out / f".b.{os.getpid()}.tmp.png"
    alive.write_bytes(b"being written")
    assert main(["enhance", str(src), "-o", str(out), "--weights", tiny_weights, "-q"]) == 0
    assert not stale.exists() and alive.exists()


# -- 3. bad values ---------------------------------------------------------------------
@pytest.mark.parametrize("tile", [None, "whole", 16])
def test_nan_inf_and_out_of_range_are_named(tiny, tile):
    from textrestore.inference import enhance

    arr = np.random.default_rng(0).random((20, 30, 3)).astype(np.float32)
    for bad, match in ((np.nan, "NaN"), (np.inf, "infinite"), (-np.inf, "NaN or infinite")):
        x = arr.copy()
        x[3, 4, 1] = bad
        with pytest.raises(ValueError, match=match):
            enhance(x, model=tiny, tile=tile, overlap=4, device="cpu")
        with pytest.raises(ValueError, match="NaN or infinite"):
            enhance(torch.from_numpy(x).permute(2, 0, 1), model=tiny, tile=tile, overlap=4,
                    device="cpu")  # fmt: skip
    with pytest.raises(ValueError, match="divide by 255"):
        enhance(arr * 255, model=tiny, tile=tile, overlap=4, device="cpu")
    with pytest.raises(ValueError, match=r"span \[-0.4"):
        enhance(arr - 0.5, model=tiny, tile=tile, overlap=4, device="cpu")
    # a slight overshoot (resampling) is accepted
    enhance(np.clip(arr * 1.05, 0, 1.05), model=tiny, tile=tile, overlap=4, device="cpu")


def test_bad_values_repair_is_reported_and_leaves_the_input(tiny):
    from textrestore.inference import BadValuesWarning, enhance

    x = torch.rand(3, 20, 30)
    x[0, 1, 2], x[1, 5, 5], x[2, 7, 7] = float("nan"), float("inf"), 7.0
    copy = x.clone()
    with pytest.warns(BadValuesWarning, match=r"replaced 2 NaN/Inf.*clipped 1 value"):
        out = enhance(x, model=tiny, device="cpu", bad_values="repair")
    assert bool(torch.isfinite(out).all()) and float(out.min()) >= 0 and float(out.max()) <= 1
    assert torch.equal(x.nan_to_num(-1), copy.nan_to_num(-1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enhance(torch.rand(3, 8, 8), model=tiny, device="cpu", bad_values="repair")
    with pytest.raises(ValueError, match="bad_values"):
        enhance(x, model=tiny, device="cpu", bad_values="ignore")


def test_pil_float_and_alpha_modes(tiny):
    from textrestore.inference import enhance

    grey = np.random.default_rng(0).integers(0, 120, (20, 30), dtype=np.uint8)
    ref = np.asarray(enhance(Image.fromarray(grey), model=tiny, device="cpu"), np.float32)
    out_f = enhance(Image.fromarray(grey.astype(np.float32) / 255), model=tiny, device="cpu")
    assert out_f.mode == "F" and out_f.size == (30, 20)
    np.testing.assert_allclose(np.asarray(out_f) * 255, ref, atol=1.0)  # not near-black
    alpha = np.random.default_rng(1).integers(0, 256, (20, 30), dtype=np.uint8)
    la = Image.fromarray(np.stack([grey, alpha], axis=2))
    out_la = enhance(la, model=tiny, device="cpu")
    assert out_la.mode == "LA" and np.array_equal(np.asarray(out_la)[..., 1], alpha)
    nan_f = np.full((5, 5), np.nan, np.float32)
    with pytest.raises(ValueError, match="NaN"):
        enhance(Image.fromarray(nan_f), model=tiny, device="cpu")
    for mode in ("P", "CMYK", "YCbCr", "1", "I;16"):
        im = Image.fromarray(np.stack([grey] * 3, axis=2)).convert(mode)
        res = enhance(im, model=tiny, device="cpu")
        assert res.size == (30, 20) and res.mode == {"P": "RGB", "1": "L"}.get(mode, mode)


# -- 4. any size by default ------------------------------------------------------------
def _spy_tiles(monkeypatch) -> list[tuple[int, int]]:
    import textrestore.inference as inference

    seen: list[tuple[int, int]] = []
    real = inference._run_tiled

    def spy(model, x, prompt, tile, overlap, tile_batch, *args, **kwargs):
        seen.append((tile, tile_batch))
        return real(model, x, prompt, tile, overlap, tile_batch, *args, **kwargs)

    monkeypatch.setattr(inference, "_run_tiled", spy)
    return seen


def test_default_picks_whole_or_tiles_from_free_memory(tiny, monkeypatch):
    import textrestore.inference as inference

    seen = _spy_tiles(monkeypatch)
    x = torch.rand(1, 3, 400, 700)  # 107 MB of float32 activations
    monkeypatch.setattr(inference, "_available_bytes", lambda: 64 * 2**30)
    whole = inference.enhance(x, model=tiny, device="cpu", amp=False)
    assert seen == []  # fits: one forward over the whole image
    monkeypatch.setattr(inference, "_available_bytes", lambda: 100 * 2**20)  # 100 MiB free
    tiled = inference.enhance(x, model=tiny, device="cpu", amp=False)
    assert len(seen) == 1 and seen[0][0] >= inference.MIN_AUTO_TILE
    assert tiled.shape == whole.shape
    # an explicit budget too small for even one tile: 256-px tiles, one per forward
    seen.clear()
    inference.enhance(x, model=tiny, device="cpu", memory_budget=1, amp=False)
    assert seen == [(inference.MIN_AUTO_TILE, 1)]
    # "whole" never tiles; an int always does
    seen.clear()
    inference.enhance(x, model=tiny, device="cpu", tile="whole", memory_budget=1, amp=False)
    inference.enhance(x, model=tiny, device="cpu", tile=128, overlap=16, amp=False)
    assert seen == [(128, 4)]


def test_memory_estimate_of_the_multiscale_preset():
    from textrestore.inference import bytes_per_pixel

    ms, s = create_model("nalsuper_ms"), create_model("nalsuper_s")
    # widths 16/32/64/96 at 1, 1/2, 1/4, 1/8: 151.5 values/px; measured 465-565 B/px
    assert bytes_per_pixel(ms) == 606
    assert bytes_per_pixel(ms, torch.bfloat16) == 303
    assert bytes_per_pixel(ms) < bytes_per_pixel(s)


def test_tile_progress_bar_shows_for_slow_runs(capsys):
    from textrestore.inference import _progress_bar

    with _progress_bar(3, True) as bar:
        assert not bar.disable and bar.total == 3
    with _progress_bar(3, False) as bar:
        assert bar.disable


# -- 5. bounded prompt bank ------------------------------------------------------------
class CountingEncoder(TextEncoder):
    """One token per prompt from a hash; counts what it encodes."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__(name="counting", dim=dim, max_length=4)
        self.encoded: list[str] = []
        self.freeze()

    def forward(self, prompts: list[str]) -> TextEmbedding:
        self.encoded.extend(prompts)
        g = torch.Generator().manual_seed(len(self.encoded))
        tokens = torch.randn(len(prompts), 2, self.dim, generator=g)
        return TextEmbedding.from_tensor(tokens, torch.ones(len(prompts), 2, dtype=torch.bool))


def test_prompt_bank_is_bounded_with_1000_prompts():
    enc = CountingEncoder()
    bank = PromptBank(8, max_new_prompts=16)
    bank.add("normal light image", enc.encode(["normal light image"]))  # shipped
    bank.attach_encoder(enc)
    bank.eval()
    sizes = []
    for i in range(1000):
        bank([f"prompt number {i}", "normal light image"])
        if i % 3 == 0:
            bank(["prompt number 0"])  # kept warm: never evicted
        sizes.append(len(list(bank.buffers())))
    assert len(bank) == 1 + 16 and max(sizes) == sizes[-1] <= 4 * 17 + 1
    assert "normal light image" in bank and "prompt number 0" in bank
    assert "prompt number 1" not in bank and "prompt number 999" in bank
    assert enc.encoded.count("prompt number 0") == 1  # never re-encoded
    n = len(enc.encoded)
    bank(["prompt number 1"])  # evicted: encoded again, same bank size
    assert len(enc.encoded) == n + 1 and len(bank) == 17
    # the bank still saves and loads (buffer indices with gaps)
    fresh = PromptBank(8)
    fresh.load_state_dict(bank.state_dict())
    assert sorted(fresh.prompts) == sorted(bank.prompts)
    assert torch.equal(fresh(["prompt number 999"]).tokens, bank(["prompt number 999"]).tokens)


def test_prompt_bank_keeps_training_prompts_and_is_configurable():
    enc = CountingEncoder()
    bank = PromptBank(8, max_new_prompts=2)
    bank.attach_encoder(enc)
    bank.train()
    bank([f"train {i}" for i in range(10)])  # prompts a model is trained with stay
    bank.eval()
    for i in range(10):
        bank([f"new {i}"])
    assert len(bank) == 12 and bank.new_prompts == ["new 8", "new 9"]
    bank.max_new_prompts = 0
    assert len(bank) == 10 and bank.new_prompts == []
    bank.max_new_prompts = None
    for i in range(50):
        bank([f"more {i}"])
    assert len(bank) == 60
    with pytest.raises(ValueError, match="max_new_prompts"):
        PromptBank(8, max_new_prompts=-1)
    model = create_model("nalsuper_t", text_dim=8)
    assert model.prompt_bank.max_new_prompts == 256

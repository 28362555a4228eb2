"""Fuzz `textrestore enhance` and `enhance()` (hypothesis): random files and options.

Invariants of the command, for every case: no traceback; no input file modified or
removed (checksums); every input either written (recorded in the output folder's
manifest) or reported (a FAILED line naming it); the exit code matches (0: all written,
1: some reported, 2: one line before any work and nothing written). Of ``enhance()``:
the result has the input's shape and dtype with finite values in range, or a
ValueError/TypeError is raised; the input is not modified.

``HYPOTHESIS_MAX_EXAMPLES`` scales the number of cases (about 60 s in all by default).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from textrestore import create_model
from textrestore.cli import main
from textrestore.commands.enhance import MANIFEST
from textrestore.data import IMAGE_EXTENSIONS
from textrestore.text import TextEmbedding

N_CLI = int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "20")) * 2
N_API = int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "20")) * 3




# -- random files ----------------------------------------------------------------------
KINDS = ["rgb", "grey", "rgba", "palette", "grey16", "truncated", "text", "empty", "swapped"]
NAMES = ["pic", "Pic", "photo", "a b", "ünï", "x.y"]
EXTS = [".png", ".jpg", ".PNG", ".bmp", ".tif", ".webp", ".txt"]


def _image_bytes(kind: str, h: int, w: int, ext: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    if kind in ("text", "empty"):
        return b"" if kind == "empty" else b"not an image at all\n"
    if kind == "grey16":
        im = Image.fromarray(rng.integers(0, 65535, (h, w), dtype=np.uint16))
        fmt = "PNG"
    else:
        arr = rng.integers(0, 90, (h, w, 3), dtype=np.uint8)
        im = Image.fromarray(arr)
        im = {"grey": im.convert("L"), "rgba": im.convert("RGBA"),
              "palette": im.convert("P")}.get(kind, im)  # fmt: skip
        fmt = {".jpg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".webp": "WEBP"}.get(
            ext.lower(), "PNG"
        )
        if fmt == "JPEG" and im.mode in ("RGBA", "P"):
            im = im.convert("RGB")
        if kind == "swapped":  # a PNG named .jpg or a JPEG named .png
            fmt = "JPEG" if fmt == "PNG" else "PNG"
            im = im.convert("RGB")
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    data = buf.getvalue()
    return data[: max(1, len(data) // 2)] if kind == "truncated" else data


files = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.sampled_from(NAMES),
        st.sampled_from(EXTS),
        st.integers(1, 40),
        st.integers(1, 40),
        st.booleans(),  # in a sub-folder
    ),
    min_size=1,
    max_size=4,
)
options = st.fixed_dictionaries(
    {
        "tile": st.sampled_from([None, None, None, "auto", "whole", "16", "0", "big"]),
        "overlap": st.sampled_from([None, None, "0", "4", "-1"]),
        "ext": st.sampled_from([None, None, "png", "jpg", "tif", "webp", "gif"]),
        "out": st.sampled_from(["out", "out", "out", "in", "in/sub", "."]),
        "as_folder": st.booleans(),
        "skip_existing": st.booleans(),
        "overwrite": st.booleans(),
        "rerun": st.booleans(),
    }
)


def _checksums(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: a bad option value
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def _manifest_sources(root: Path) -> set[str]:
    sources: set[str] = set()
    for m in root.rglob(MANIFEST):
        for line in m.read_text().splitlines():
            sources.add(json.loads(line)["source"])
    return sources


def test_fuzz_cli(tiny_weights):
    stats = {"cases": 0, "runs": 0, "exit": {0: 0, 1: 0, 2: 0}, "inputs": 0, "written": 0,
             "reported": 0, "lost": 0, "tracebacks": 0}  # fmt: skip

    @settings(max_examples=N_CLI, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(files=files, opts=options)
    def one(files: list[tuple[Any, ...]], opts: dict[str, Any]) -> None:
        stats["cases"] += 1
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            src = root / "in"
            src.mkdir()
            paths = []
            for i, (kind, name, ext, h, w, sub) in enumerate(files):
                folder = src / "sub" if sub else src
                folder.mkdir(exist_ok=True)
                path = folder / f"{name}{ext}"
                path.write_bytes(_image_bytes(kind, h, w, ext, i))
                paths.append(path)
            before = _checksums(src)
            inputs = [str(src)] if opts["as_folder"] else sorted({str(p) for p in paths})
            out = root / opts["out"]
            argv = ["enhance", *inputs, "-o", str(out), "--weights", tiny_weights, "-q",
                    "--device", "cpu"]  # fmt: skip
            for flag in ("tile", "overlap", "ext"):
                if opts[flag] is not None:
                    argv += [f"--{flag}", opts[flag]]
            argv += ["--skip-existing"] * opts["skip_existing"] + ["--overwrite"] * opts[
                "overwrite"
            ]
            for _ in range(2 if opts["rerun"] else 1):
                code, stdout, stderr = _run(argv)
                stats["runs"] += 1
                stats["exit"][code] = stats["exit"].get(code, 0) + 1
                if "Traceback" in stderr:
                    stats["tracebacks"] += 1
                assert "Traceback" not in stderr, stderr
                after = _checksums(src)
                lost = [k for k, v in before.items() if after.get(k) != v]
                stats["lost"] += len(lost)
                assert not lost, (argv, lost, stderr)
                assert code in (0, 1, 2), (code, stderr)
                if code == 2:  # one line (argparse: usage + one error line), nothing new
                    lines = [ln for ln in stderr.splitlines() if ln.strip()]
                    assert len(lines) == 1 or lines[0].startswith("usage:"), stderr
                    continue
                written = _manifest_sources(root)
                reported = {ln.split("FAILED ", 1)[1] for ln in stderr.splitlines()
                            if "FAILED " in ln}  # fmt: skip
                out_real = Path(os.path.realpath(out))
                if opts["as_folder"]:  # a folder walk leaves out what lies in the output folder
                    ours = {p for p in paths if out_real not in Path(os.path.realpath(p)).parents}
                    others = {p for p in ours if p.suffix.lower() not in IMAGE_EXTENSIONS}
                    if others:  # non-image files in a folder are counted as ignored
                        assert "ignored" in stdout, stdout
                    ours -= others
                else:
                    ours = {Path(p) for p in inputs}
                for p in ours:
                    done = os.path.realpath(p) in written
                    named = any(r.startswith(f"{p}: ") for r in reported)
                    # --skip-existing keeps an existing output that no record explains
                    kept = opts["skip_existing"] and "skipped 0 existing" not in stdout
                    assert done or named or kept, (p, argv, stdout, stderr)
                stats["inputs"] += len(ours)
                stats["written"] += len(written)
                stats["reported"] += len(reported)
                assert (code == 1) == bool(reported), (code, stdout, stderr)

    one()
    print(f"\nfuzz cli: {stats}")
    assert stats["tracebacks"] == 0 and stats["lost"] == 0
    assert stats["exit"][0] and stats["exit"][1] and stats["exit"][2]  # every outcome seen


# -- enhance() -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    model = create_model("nalsuper_t", text_dim=8).eval()
    emb = TextEmbedding(torch.randn(1, 3, 8), torch.ones(1, 3, dtype=torch.bool), torch.zeros(1, 8))
    model.prompt_bank.add("normal light image", emb)
    return model


arrays = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(["uint8", "uint16", "float32", "float64", "float32", "int32"]),
        "shape": st.sampled_from(["hw", "hw1", "hw3", "hw3", "hw4", "hw2", "chw", "bchw"]),
        "h": st.integers(1, 48),
        "w": st.integers(1, 48),
        "poison": st.sampled_from([None, None, None, "nan", "inf", "-inf", "x255", "neg"]),
        "tile": st.sampled_from([None, None, "auto", "whole", 16, 24, 3]),
        "overlap": st.sampled_from([0, 4, 4, 32]),
        "bad_values": st.sampled_from(["raise", "repair"]),
        "torch": st.booleans(),
    }
)


def test_fuzz_enhance_api(tiny):
    from textrestore.inference import BadValuesWarning, enhance

    stats = {"cases": 0, "ok": 0, "refused": 0, "repaired": 0, "nan_outputs": 0}

    @settings(max_examples=N_API, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=arrays)
    def one(case: dict[str, Any]) -> None:
        stats["cases"] += 1
        h, w = case["h"], case["w"]
        shape = {"hw": (h, w), "hw1": (h, w, 1), "hw3": (h, w, 3), "hw4": (h, w, 4),
                 "hw2": (h, w, 2), "chw": (3, h, w), "bchw": (2, 3, h, w)}[case["shape"]]  # fmt: skip
        if case["torch"] and len(shape) == 3 and shape[2] == 3:
            shape = (3, h, w)  # the tensor layout of an RGB image
        rng = np.random.default_rng(h * 100 + w)
        arr = rng.random(shape)
        dtype = np.dtype(case["dtype"])
        scale = np.iinfo(dtype).max if dtype.kind == "u" else 1
        arr = (arr * scale).astype(dtype)
        if dtype.kind == "f" and case["poison"]:
            flat = arr.reshape(-1)
            value = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}.get(case["poison"])
            if value is not None:
                flat[len(flat) // 2] = value
            elif case["poison"] == "x255":
                arr = arr * 255
            else:
                arr = arr - 0.6
        image: Any = arr
        if case["torch"]:
            try:
                image = torch.from_numpy(arr.copy())
            except TypeError:
                image = torch.from_numpy(arr.astype(np.float32))
        copy = image.clone() if isinstance(image, torch.Tensor) else arr.copy()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", BadValuesWarning)
                out = enhance(image, model=tiny, tile=case["tile"], overlap=case["overlap"],
                              device="cpu", bad_values=case["bad_values"])  # fmt: skip
            stats["repaired"] += bool(caught)
        except (ValueError, TypeError) as err:
            assert str(err).startswith("enhance:"), err
            stats["refused"] += 1
        else:
            stats["ok"] += 1
            assert out.shape == image.shape and out.dtype == image.dtype
            o = np.asarray(out.float() if isinstance(out, torch.Tensor) else out, np.float64)
            if not np.isfinite(o).all():
                stats["nan_outputs"] += 1
            assert np.isfinite(o).all()
            if o.dtype.kind == "f" and dtype.kind == "f":
                assert o.min() >= 0 and o.max() <= 1
        if isinstance(image, torch.Tensor):
            assert torch.equal(image.nan_to_num(7.0), copy.nan_to_num(7.0))
        else:
            np.testing.assert_array_equal(image, copy)

    one()
    print(f"\nfuzz enhance(): {stats}")
    assert stats["nan_outputs"] == 0 and stats["ok"] and stats["refused"]

"""Export for any batch: ONNX and ExportedProgram with dynamic batch, height and width.

Every preset's real architecture (random weights where none ship), exported once per
format, then run at batch 1 and 3 and at sizes 64x96 and 37x53; the exported graph must
equal PyTorch within 1e-4.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from textrestore import create_model, list_models
from textrestore.export import BakedPromptModel, export_model, load_exported
from textrestore.text import TextEmbedding

HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))
FORMATS = [
    pytest.param("onnx", marks=pytest.mark.skipif(not HAS_ONNX, reason="no onnx extra")),
    "exported-program",
]
CASES = [(1, 64, 96), (3, 64, 96), (1, 37, 53), (3, 37, 53)]
SUFFIX = {"onnx": ".onnx", "exported-program": ".pt2"}


def _model(name: str) -> torch.nn.Module:
    model = create_model(name).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # non-trivial weights: LayerScale and fusion scales start at 0
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    d = model.text_dim
    emb = TextEmbedding(
        torch.randn(1, 6, d, generator=g), torch.ones(1, 6, dtype=torch.bool), torch.zeros(1, d)
    )
    model.prompt_bank.add(model.prompt_bank.default_prompt, emb)
    return model


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list_models())
def test_dynamic_batch_and_size(name: str, fmt: str, tmp_path: Path) -> None:
    model = _model(name)
    path = export_model(model, tmp_path / f"{name}{SUFFIX[fmt]}", fmt)
    run = load_exported(path)
    ref = BakedPromptModel(model).eval()
    diffs = []
    for b, h, w in CASES:
        x = torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(b * h + w))
        with torch.no_grad():
            want = ref(x)
            got = run(x)
        assert got.shape == (b, 3, h, w)
        diff = float((got - want).abs().max())
        diffs.append(diff)
        assert diff <= 1e-4, (name, fmt, b, h, w, diff)
        # rows of a batch are independent: row 0 of the batch equals the image alone
        if b > 1:
            assert float((run(x[:1]) - got[:1]).abs().max()) <= 1e-4
    with torch.no_grad():  # the baked graph is the model with its default prompt
        x = torch.rand(2, 3, 37, 53)
        assert torch.allclose(ref(x), model(x), atol=1e-6)
    print(f"{name} {fmt} max|export - torch| per (B,H,W) {CASES}: "
          + ", ".join(f"{d:.2e}" for d in diffs))  # fmt: skip


def test_torchscript_any_batch(tmp_path: Path) -> None:
    model = _model("nalsuper_t")
    path = export_model(model, tmp_path / "m.pt", "torchscript")
    run, ref = load_exported(path), BakedPromptModel(model).eval()
    for b, h, w in CASES:
        x = torch.rand(b, 3, h, w)
        with torch.no_grad():
            assert float((run(x) - ref(x)).abs().max()) <= 1e-4

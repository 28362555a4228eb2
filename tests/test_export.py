"""Export round trip (tiny preset): torchscript and exported-program always, ONNX if installed."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from safetensors.torch import save_file

from textrestore import create_model
from textrestore.cli import main
from textrestore.export import BakedPromptModel, export_model, load_exported
from textrestore.text import TextEmbedding

HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))
FORMATS = [
    ("torchscript", ".pt"),
    ("exported-program", ".pt2"),
    pytest.param("onnx", ".onnx", marks=pytest.mark.skipif(not HAS_ONNX, reason="no onnx extra")),
]


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    model = create_model("nalsuper_t").eval()
    # non-trivial weights: the layer-attention scale and LayerScale start at 0
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    emb = TextEmbedding(
        torch.randn(1, 5, 384), torch.ones(1, 5, dtype=torch.bool), torch.zeros(1, 384)
    )
    model.prompt_bank.add("normal light image", emb)
    return model


@pytest.mark.parametrize(("fmt", "suffix"), FORMATS)
def test_round_trip(tiny, tmp_path, fmt, suffix):
    path = export_model(tiny, tmp_path / f"m{suffix}", fmt)
    assert path.is_file() and not list(tmp_path.glob(".*tmp*"))
    fn = load_exported(path)
    ref = BakedPromptModel(tiny).eval()
    for h, w in ((64, 96), (37, 53)):
        x = torch.rand(1, 3, h, w)
        with torch.no_grad():
            expected, got = ref(x), fn(x)
        assert got.shape == (1, 3, h, w)
        assert float((got - expected).abs().max()) <= 1e-4
    # the baked model is the model with its default prompt
    x = torch.rand(1, 3, 20, 30)
    with torch.no_grad():
        assert torch.allclose(ref(x), tiny(x), atol=1e-6)


def test_fused_attention_flag_restored(tiny, tmp_path):
    if not HAS_ONNX:
        pytest.skip("no onnx extra")
    flags = [m.fused_attn for m in tiny.modules() if hasattr(m, "fused_attn")]
    export_model(tiny, tmp_path / "m.onnx", "onnx")
    assert flags == [m.fused_attn for m in tiny.modules() if hasattr(m, "fused_attn")]


def test_export_leaves_the_callers_model_as_it_was(tmp_path):
    """export works on a float32 CPU copy: the caller's float64 model in train mode stays
    float64, in train mode, with the same parameter objects and values."""
    model = create_model("nalsuper_t").double().train()
    model.prompt_bank.add(
        "normal light image",
        TextEmbedding(torch.randn(1, 3, 384), torch.ones(1, 3, dtype=torch.bool), torch.zeros(1, 384)),
    )
    params = {name: (p, p.detach().clone()) for name, p in model.named_parameters()}
    export_model(model, tmp_path / "m.pt", "torchscript")
    assert model.training and all(m.training for m in model.modules())
    for name, p in model.named_parameters():
        assert p is params[name][0] and p.dtype == torch.float64 and p.device.type == "cpu"
        assert torch.equal(p, params[name][1])


def test_bad_arguments(tiny, tmp_path):
    with pytest.raises(ValueError, match="format"):
        export_model(tiny, tmp_path / "m.x", "tflite")
    with pytest.raises(FileNotFoundError):
        export_model(tiny, tmp_path / "no" / "m.pt", "torchscript")
    with pytest.raises(FileNotFoundError):
        load_exported(tmp_path / "missing.pt")


def test_cli(tiny, tmp_path, capsys):
    weights = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in tiny.state_dict().items()}, str(weights),
              {"preset": "nalsuper_t"})  # fmt: skip
    out = tmp_path / "m.pt"
    code = main(["export", "--weights", str(weights), "--format", "torchscript", "-o", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and out.is_file() and "max abs diff" in text

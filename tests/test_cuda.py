"""The network on CUDA: half-precision autocast, the fast path, ``enhance()`` and training.

These run where CUDA is present (the project's GPU device machine: ``pytest tests/test_cuda.py``);
CI machines have no GPU, so there they are skipped with that reason. The CPU versions of
the same properties run everywhere (``test_model_fixes.py``, ``test_fast_paths.py``,
``test_inference.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textrestore import enhance
from textrestore.layers import TCM, CrossLayerAttention
from textrestore.models import create_model, list_models

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (CI machines have none)"
)

# Tolerance of half-precision autocast against float32 on the shipped model (mean absolute
# difference of outputs in [0, 1]); the same bound as the CPU autocast test.
HALF_MEAN_TOL = 0.02


@pytest.fixture(autouse=True)
def _no_tf32():
    """Exact float32 comparisons need TF32 off (PyTorch allows it for cuDNN convs)."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def _photo(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A smooth dark test image (gradients + blobs), (1, 3, H, W) in [0, 0.4]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.stack([xx, yy, 0.5 * (xx + yy)])
    noise = torch.nn.functional.interpolate(
        torch.rand(1, 3, 8, 8, generator=g), size=(h, w), mode="bilinear"
    )[0]
    return (0.25 * base + 0.15 * noise).clamp(0, 0.4)[None]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_shipped_model_half_autocast_at_photo_size(dtype: torch.dtype) -> None:
    """400×600 (the size whose Gram diagonal overflowed float16): finite, near float32."""
    model = create_model("nalsuper_ms", pretrained=True).eval().cuda()
    x = _photo(400, 600).cuda()
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cuda", dtype=dtype):
            out = model(x)
    assert torch.isfinite(out).all()
    assert float((out.float() - ref).abs().mean()) < HALF_MEAN_TOL


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", list_models("nalsuper*"))
def test_every_preset_half_autocast_is_finite_and_close(name: str, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    model = create_model(name, text_dim=16).eval().cuda()
    x, text = _photo(160, 240).cuda(), torch.randn(5, 16, device="cuda")
    with torch.no_grad():
        ref = model(x, text)
        with torch.autocast("cuda", dtype=dtype):
            out = model(x, text)
    assert torch.isfinite(out).all()
    assert float((out.float() - ref).abs().mean()) < HALF_MEAN_TOL


@pytest.mark.parametrize("name", list_models("nalsuper*"))
@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("batch", [1, 2])
def test_fast_path_equals_reference_on_cuda(name: str, channels_last: bool, batch: int) -> None:
    torch.manual_seed(0)
    kwargs = {"depth": 4} if name == "nalsuper" else {}
    model = create_model(name, channels_last=channels_last, **kwargs).eval().cuda()
    with torch.no_grad():
        for cla in model.modules():
            if isinstance(cla, CrossLayerAttention) and cla.scale is not None:
                cla.scale.fill_(0.8)
    image = torch.rand(batch, 3, 37, 45, device="cuda")
    text = torch.randn(batch, 6, model.text_dim, device="cuda")
    with torch.no_grad():
        fast = model(image, text)
    flags = {m: m.fused_attn for m in model.modules() if isinstance(m, TCM)}
    for m in flags:
        m.fused_attn = False
    with torch.enable_grad():
        ref = model(image, text).detach()
    for m, flag in flags.items():
        m.fused_attn = flag
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)


def _tiny_model() -> torch.nn.Module:
    """``nalsuper_t`` with random weights and its default prompt in the bank."""
    from textrestore.text import TextEmbedding

    model = create_model("nalsuper_t").eval()
    emb = TextEmbedding(
        torch.randn(1, 4, 384), torch.ones(1, 4, dtype=torch.bool), torch.zeros(1, 384)
    )
    model.prompt_bank.add("normal light image", emb)
    return model


def test_enhance_moves_a_cpu_model_to_cuda_and_back() -> None:
    model = _tiny_model()
    params = [p for p in model.parameters()]
    img = (np.random.default_rng(0).random((48, 64, 3)) * 80).astype(np.uint8)
    on_cpu = enhance(img, model, device="cpu")
    on_gpu = enhance(img, model, device="cuda", amp=False)
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert all(a is b for a, b in zip(params, model.parameters()))
    assert int(np.abs(on_cpu.astype(int) - on_gpu.astype(int)).max()) <= 1


def test_enhance_auto_keeps_a_cuda_model_on_cuda() -> None:
    model = _tiny_model().cuda()
    x = torch.rand(3, 32, 40)
    out = enhance(x, model)  # runs on the model's device; the result on the input's
    assert out.device == x.device and torch.isfinite(out).all()
    assert all(p.device.type == "cuda" for p in model.parameters())
    torch.testing.assert_close(out, enhance(x.cuda(), model).cpu(), atol=0, rtol=0)


def test_tiled_enhance_on_cuda_matches_whole_image() -> None:
    """The shipped default, tiled with the context pass, against the whole image (bf16)."""
    x = _photo(512, 768, seed=3)[0]
    whole = enhance(x, tile="whole", device="cuda")
    tiled = enhance(x, tile=256, device="cuda")
    mse = float(((whole - tiled) ** 2).mean())
    assert 10 * np.log10(1.0 / max(mse, 1e-12)) >= 35.0


@pytest.mark.parametrize("bf16", [True, False])
def test_enhance_half_precision_copy_on_cuda(monkeypatch, bf16: bool) -> None:
    """The default on CUDA: a bf16 copy (fp16 on GPUs without bf16), near float32, finite."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    model = create_model("nalsuper_ms", pretrained=True).eval().cuda()
    x = _photo(1500, 2000, seed=5)[0].cuda()
    full = enhance(x, model, amp=False)
    torch.cuda.reset_peak_memory_stats()
    half = enhance(x, model)
    assert torch.isfinite(half).all()
    mse = float(((half - full) ** 2).mean())
    assert 10 * np.log10(1.0 / max(mse, 1e-12)) >= 40.0
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_trainer_steps_on_cuda_with_autocast(tmp_path, amp: str) -> None:
    from textrestore.train import TrainConfig, Trainer

    cfg = TrainConfig.from_dict(
        {
            "model": "nalsuper_t", "text_encoder": "learned:8", "device": "cuda",
            "data": {"kind": "synthetic", "crop": 64, "batch_size": 2, "length": 8,
                     "size": 96, "val_length": 1},
            "steps": 4, "val_every": 0, "ckpt_every": 0, "amp": amp, "log_every": 0,
            "out_dir": str(tmp_path / "run"), "resume": None,
        }
    )  # fmt: skip
    summary = Trainer(cfg).fit()
    assert summary["step"] == 4 and summary["nonfinite_steps"] == 0
    import json

    log = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    losses = [json.loads(line)["loss"] for line in log if '"loss"' in line]
    assert len(losses) == 4 and all(isinstance(v, float) and np.isfinite(v) for v in losses)

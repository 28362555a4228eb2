"""Inference fast paths vs the reference formulation (fp32, 1e-5) for every preset.

The fast paths (no autograd): NaLSuper's level buffer with the folded cross-layer
projection, RTFB/IFA in place, TCM in pixel chunks. The reference: the same modules
with autograd on (the plain path), or with ``fused_attn=False``.
"""

from __future__ import annotations

import pytest
import torch

from textrestore.layers import IFA, RTFB, TCM, CrossLayerAttention
from textrestore.layers import tcm as tcm_module
from textrestore.models import create_model, list_models
from textrestore.text.embedding import TextEmbedding


def _reference(model: torch.nn.Module, *args: object) -> torch.Tensor:
    """The plain path: autograd on (so no fast path), fused attention off."""
    flags = {m: m.fused_attn for m in model.modules() if isinstance(m, TCM)}
    for m in flags:
        m.fused_attn = False
    try:
        with torch.enable_grad():
            return model(*args).detach()
    finally:
        for m, flag in flags.items():
            m.fused_attn = flag


@pytest.mark.parametrize("name", list_models("nalsuper*"))
@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("batch", [1, 2])
def test_model_fast_path_equals_reference(name: str, channels_last: bool, batch: int) -> None:
    torch.manual_seed(0)
    kwargs = {"depth": 4} if name == "nalsuper" else {}
    model = create_model(name, channels_last=channels_last, **kwargs).eval()
    with torch.no_grad():  # exercise the layer attention, not only the projection
        for cla in model.modules():
            if isinstance(cla, CrossLayerAttention):
                cla.scale.fill_(0.8)
    image = torch.rand(batch, 3, 11, 14)
    text = torch.randn(batch, 6, model.text_dim)
    mask = torch.tensor([[True] * 4 + [False] * 2] * batch)
    emb = TextEmbedding.from_tensor(text, mask)
    with torch.no_grad():
        fast = model(image, emb)
    torch.testing.assert_close(fast, _reference(model, image, emb), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("overrides", [{"use_ifa": False}, {"use_tcm": False}, {"depth": 1}])
def test_model_fast_path_variants(overrides: dict) -> None:
    torch.manual_seed(1)
    model = create_model("nalsuper_t", **overrides).eval()
    image, text = torch.rand(1, 3, 9, 10), torch.randn(1, 3, model.text_dim)
    with torch.no_grad():
        fast = model(image, text)
    torch.testing.assert_close(fast, _reference(model, image, text), atol=1e-5, rtol=1e-5)


def test_tcm_chunked_path_equals_reference_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcm_module, "CHUNK_PIXELS", 7)  # several chunks and a ragged last one
    torch.manual_seed(2)
    tcm = TCM(16, 12, num_heads=4, init_values=0.5)
    x = torch.randn(2, 16, 5, 9)
    text, mask = torch.randn(2, 5, 12), torch.tensor([[True, True, False, True, False]] * 2)
    for memory_format in (torch.contiguous_format, torch.channels_last):
        xm = x.contiguous(memory_format=memory_format)
        with torch.no_grad():
            fast = tcm(xm, text, mask)
            inplace = tcm(xm.clone(), text, mask, inplace=True)
        tcm.fused_attn = False
        ref = tcm(xm, text, mask)
        tcm.fused_attn = True
        torch.testing.assert_close(fast, ref.detach(), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(inplace, ref.detach(), atol=1e-5, rtol=1e-5)


def test_rtfb_forward_inference_equals_forward_and_writes_out() -> None:
    torch.manual_seed(3)
    block = RTFB(16, 8, num_heads=2).eval()
    x = torch.randn(2, 16, 6, 7).contiguous(memory_format=torch.channels_last)
    text = torch.randn(2, 3, 8)
    ref = block(x, text)
    x_before = x.clone()
    with torch.no_grad():
        out = torch.empty_like(x)
        got = block(x, text, None, out=out)
        plain = block(x, text, None)
    assert got is out
    torch.testing.assert_close(got, ref.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(plain, ref.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(x, x_before, atol=0, rtol=0)  # the input is not modified


def test_ifa_attend_inplace_is_bit_identical() -> None:
    ifa = IFA(16)
    x = torch.randn(2, 16, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(ifa(x.clone(), inplace=True), ifa(x), atol=0, rtol=0)


def test_folded_projection_equals_fusion() -> None:
    torch.manual_seed(4)
    cla = CrossLayerAttention(8, 3)
    with torch.no_grad():
        cla.scale.fill_(0.6)
    levels = torch.randn(2, 3, 8, 4, 5)
    f = levels.flatten(2)
    weights = cla.fold_projection(cla.cosine(f))
    fused = torch.einsum("bomc,bmchw->bohw", weights, levels) + cla.proj.bias[:, None, None]
    torch.testing.assert_close(fused, cla(levels).detach(), atol=1e-5, rtol=1e-5)


def test_fast_path_is_skipped_when_autograd_or_reference_is_requested() -> None:
    model = create_model("nalsuper_t").eval()
    image = torch.rand(1, 3, 8, 8)
    assert not model._level_buffer_ok(image)  # grad enabled
    with torch.no_grad():
        assert model._level_buffer_ok(image)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not model._level_buffer_ok(image)
        model.blocks[0].tcm.fused_attn = False
        assert not model._level_buffer_ok(image)  # count_flops counts the reference


@pytest.mark.parametrize("kind", ["module", "global"])
def test_forward_hooks_run_under_no_grad(kind: str) -> None:
    """Hooks on submodules (attention capture, tiling context) must see every call."""
    from textrestore.layers import ChannelAttention, PixelAttention

    torch.manual_seed(0)
    model = create_model("nalsuper_t", text_dim=8).eval()
    text = torch.randn(1, 3, 8)
    image = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        plain = model(image, text)
    seen: list[str] = []
    if kind == "module":
        handles = [
            m.register_forward_pre_hook(lambda mod, args: seen.append(type(mod).__name__))
            for m in model.modules()
            if isinstance(m, (PixelAttention, ChannelAttention, TCM))
        ]
    else:
        handles = [
            torch.nn.modules.module.register_module_forward_hook(
                lambda mod, args, out: seen.append(type(mod).__name__)
            )
        ]
    try:
        with torch.no_grad():
            hooked = model(image, text)
    finally:
        for h in handles:
            h.remove()
    n_blocks = len(model.blocks)
    for name in ("PixelAttention", "ChannelAttention", "TCM"):
        assert seen.count(name) == n_blocks, (name, seen.count(name))
    torch.testing.assert_close(hooked, plain, atol=1e-5, rtol=1e-5)


def test_fixed_gate_and_affinity_agree_on_fast_and_reference_paths() -> None:
    """Tiling's fixed global statistics are honoured by both paths alike."""
    from textrestore.layers import ChannelAttention, GlobalStatistics
    from textrestore.layers.statistics import record_statistic

    torch.manual_seed(1)
    model = create_model("nalsuper_t", text_dim=8).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, CrossLayerAttention):
                m.scale.fill_(0.7)
    text = torch.randn(2, 3, 8)
    image = torch.rand(2, 3, 10, 14)
    with torch.no_grad():
        free = model(image, text)
    stats = GlobalStatistics()
    with stats.recording():
        for m in model.modules():
            if isinstance(m, ChannelAttention):
                record_statistic(m, torch.rand(1, m.dim, 1, 1))
            if isinstance(m, CrossLayerAttention):
                record_statistic(m, torch.softmax(torch.randn(1, m.num_levels, m.num_levels), -1))
    assert len(stats) == 3 + 1  # the channel attention of 3 RTFBs and the fusion
    with stats.applied(), torch.no_grad():
        fast = model(image, text)
    with stats.applied():
        ref = _reference(model, image, text)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(fast, free, atol=1e-3)
    with torch.no_grad():  # outside the block the model is its own again
        torch.testing.assert_close(model(image, text), free, atol=0, rtol=0)


def test_all_padding_mask_raises_on_both_branches() -> None:
    model = create_model("nalsuper_t", text_dim=8).eval()
    emb = TextEmbedding.from_tensor(torch.randn(1, 3, 8), torch.zeros(1, 3, dtype=torch.bool))
    image = torch.rand(1, 3, 8, 8)
    for grad in (True, False):
        with (
            torch.set_grad_enabled(grad),
            pytest.raises(ValueError, match="at least one real token"),
        ):
            model(image, emb)


def test_a_users_replacement_and_subclass_work_without_autograd() -> None:
    """A replaced IFA and a PixelAttention subclass run through their own forward."""
    from textrestore.layers import PixelAttention

    class Halve(PixelAttention):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 0.5 * x

    torch.manual_seed(0)
    model = create_model("nalsuper_t", text_dim=8).eval()
    model.blocks[0].ifa = torch.nn.Identity()
    model.blocks[1].ifa.pixel_attn = Halve(model.dim)
    image, text = torch.rand(1, 3, 9, 11), torch.randn(2, 8)
    with torch.no_grad():
        fast = model(image, text)
    # If the no-grad branch bypassed either module, it would differ from the autograd path.
    torch.testing.assert_close(fast, _reference(model, image, text), atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        assert model._level_buffer_ok(model.stem(image))  # the level buffer still runs


@pytest.mark.parametrize("tokens", [3, 20])  # folded (L < 16 on the CPU) and the SDPA form
@pytest.mark.parametrize("grad", [False, True])
def test_tcm_fused_forms_equal_reference_with_padding(tokens: int, grad: bool) -> None:
    """Both fused forms, trailing padding trimmed, against the plain formula; gradients too."""
    torch.manual_seed(3)
    tcm = TCM(16, 12, num_heads=4, init_values=0.5)
    assert tcm._folds(tokens) == (tokens == 3)
    x = torch.randn(2, 16, 6, 7, requires_grad=grad)
    text = torch.randn(2, tokens + 4, 12)  # 4 trailing positions padded in every sample
    mask = torch.zeros(2, tokens + 4, dtype=torch.bool)
    mask[0, :tokens] = True
    mask[1, : tokens - 1] = True  # the second sample one token shorter
    with torch.set_grad_enabled(grad):
        fused = tcm(x, text, mask)
        tcm.fused_attn = False
        ref = tcm(x, text, mask)
        tcm.fused_attn = True
    torch.testing.assert_close(fused, ref, atol=1e-5, rtol=1e-5)
    if grad:
        g_fused = torch.autograd.grad(fused.square().sum(), [x, *tcm.parameters()])
        g_ref = torch.autograd.grad(ref.square().sum(), [x, *tcm.parameters()])
        for a, b in zip(g_fused, g_ref):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


#: Half-precision models (what ``enhance`` runs for reduced precision): the fast branch
#: against the reference formulation in the same dtype, max absolute difference.
HALF_FAST_TOL = {torch.bfloat16: 0.05, torch.float16: 0.01}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", list_models("nalsuper*"))
@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("batch", [1, 2])
def test_half_precision_fast_path_close_to_reference(
    name: str, channels_last: bool, batch: int, dtype: torch.dtype
) -> None:
    torch.manual_seed(0)
    kwargs = {"depth": 4} if name == "nalsuper" else {}
    model = create_model(name, channels_last=channels_last, **kwargs).eval()
    with torch.no_grad():
        for cla in model.modules():
            if isinstance(cla, CrossLayerAttention) and cla.scale is not None:
                cla.scale.fill_(0.8)
    model = model.to(dtype)
    image = torch.rand(batch, 3, 11, 14).to(dtype)
    text = torch.randn(batch, 6, model.text_dim).to(dtype)
    with torch.no_grad():
        fast = model(image, text)
    ref = _reference(model, image, text)
    assert torch.isfinite(fast).all()
    diff = float((fast.float() - ref.float()).abs().max())
    assert diff <= HALF_FAST_TOL[dtype], diff


def test_tcm_folds_short_texts_except_under_cuda_autocast(monkeypatch: pytest.MonkeyPatch) -> None:
    tcm = TCM(16, 12, num_heads=4)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert tcm._folds(3, cpu) and tcm._folds(3, cuda) and not tcm._folds(20, cpu)
    # h·L > C + L: SDPA on CUDA; on the CPU only from 16 tokens (its SDPA key blocks)
    assert tcm._folds(12, cpu) and not tcm._folds(12, cuda) and not tcm._folds(16, cpu)
    monkeypatch.setattr(torch, "is_autocast_enabled", lambda device_type=None: True)
    assert tcm._folds(3, cpu) and not tcm._folds(3, cuda)

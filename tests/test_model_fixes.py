"""The fixes of the network: cross-layer affinity, float16 safety, TCM key bias, ablation switches."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from textrestore.layers import TCM, CrossLayerAttention
from textrestore.models import MultiScaleNaLSuper, NaLSuper, create_model


def _entropy(p: torch.Tensor) -> float:
    p = p.detach()
    return float(-(p * p.clamp_min(1e-12).log()).sum(-1).mean())


def _cosine_reference(levels: torch.Tensor) -> torch.Tensor:
    """Plain float64 cosine similarity of flattened levels (B, N, ...)."""
    f = levels.flatten(2).double()
    n = f.norm(dim=-1, keepdim=True)
    return (f / n) @ (f / n).transpose(1, 2)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 3), st.integers(2, 5), st.integers(1, 6), st.floats(0.5, 30.0), st.data())
def test_affinity_is_softmax_of_temperature_times_cosine(
    b: int, n: int, c: int, temperature: float, data: st.DataObject
) -> None:
    seed = data.draw(st.integers(0, 2**16))
    levels = torch.randn(b, n, c, 3, 4, generator=torch.Generator().manual_seed(seed))
    cla = CrossLayerAttention(c, n, temperature=temperature)
    expected = (temperature * _cosine_reference(levels)).softmax(-1)
    assert torch.allclose(cla.affinity(levels).double(), expected, atol=1e-5)


def test_affinity_is_far_from_uniform_after_brief_training() -> None:
    """Distinct levels get distinct weights (the old FFᵀ/(CHW) affinity stayed at 1/N)."""
    torch.manual_seed(0)
    n = 6
    cla = CrossLayerAttention(8, n)
    base = torch.randn(4, 1, 8, 6, 6)
    levels = base + 0.2 * torch.arange(n).view(1, n, 1, 1, 1) * torch.randn(4, n, 8, 6, 6)
    target = levels[:, 0]
    opt = torch.optim.Adam(cla.parameters(), lr=0.05)
    for _ in range(60):
        loss = (cla(levels) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    entropy = _entropy(cla.affinity(levels))
    assert entropy < 0.8 * math.log(n), (entropy, math.log(n))
    assert abs(float(cla.scale.detach())) > 0.01  # the layer attention is used, not left at 0


def test_float16_levels_do_not_overflow_at_photo_size() -> None:
    """A 400×600 level's sum of squares (~1.2e5) exceeds float16; the cosine stays finite."""
    levels = (torch.rand(1, 3, 4, 400, 600) * 1.5).half()
    cla = CrossLayerAttention(4, 3).half()
    aff = cla.affinity(levels)
    assert torch.isfinite(aff).all()
    assert torch.allclose(aff.double(), (10 * _cosine_reference(levels)).softmax(-1), atol=2e-3)


def test_ablation_switch_is_plain_concatenation() -> None:
    cla = CrossLayerAttention(4, 3, layer_attention=False)
    levels = [torch.rand(1, 4, 5, 5) for _ in range(3)]
    assert cla.scale is None and cla.log_temperature is None
    assert torch.allclose(cla(levels), cla.proj(torch.cat(levels, 1)), atol=1e-6)


def test_tcm_has_no_key_bias_and_old_checkpoints_load() -> None:
    tcm = TCM(8, 6, num_heads=2)
    assert tcm.k.bias is None
    old = {**tcm.state_dict(), "k.bias": torch.randn(8)}
    tcm.load_state_dict(old)  # strict: the stale key is dropped, nothing else changes


def test_key_bias_never_changed_the_output() -> None:
    """The reason it was dropped: softmax is shift-invariant per query."""
    torch.manual_seed(1)
    tcm = TCM(8, 6, num_heads=2, init_values=1.0).double()
    x, text = torch.randn(1, 8, 3, 3).double(), torch.randn(1, 4, 6).double()
    before = tcm(x, text)
    biased = torch.nn.Linear(6, 8, bias=True).double()
    biased.weight.data.copy_(tcm.k.weight)
    biased.bias.data.normal_()
    tcm.k = biased
    assert torch.allclose(tcm(x, text), before, atol=1e-10)


def test_use_ifa_and_use_fusion_are_independent() -> None:
    kw = dict(dim=8, depth=2, num_heads=2, text_dim=4)
    no_ifa = NaLSuper(**kw, use_ifa=False)  # type: ignore[arg-type]
    # no channel/pixel attention anywhere; the last block's IFA keeps only the fusion
    assert no_ifa.fusion is not None and no_ifa.blocks[0].ifa is None
    assert no_ifa.blocks[-1].ifa.channel_attn is None and no_ifa.blocks[-1].ifa.pixel_attn is None
    no_fusion = NaLSuper(**kw, use_fusion=False)  # type: ignore[arg-type]
    assert no_fusion.fusion is None and all(b.ifa is not None for b in no_fusion.blocks)
    assert all(b.ifa.fusion is None for b in no_fusion.blocks)
    plain = NaLSuper(**kw, layer_attention=False)  # type: ignore[arg-type]
    assert plain.fusion is not None and plain.fusion.scale is None
    x = torch.rand(1, 3, 6, 7)
    for m in (no_ifa, no_fusion, plain):
        assert m(x, torch.randn(2, 4)).shape == x.shape


def test_the_fusion_is_the_last_ifa_and_old_checkpoints_load_into_it() -> None:
    """The cross-layer fusion lives in the last RTFB's IFA (NaLSuper and every stage of
    the multi-scale preset); a state dict with the old top-level ``fusion.*`` keys loads
    into it and gives the same output, on the autograd and the inference branches."""
    from textrestore.layers import IFA

    torch.manual_seed(0)
    for name in ("nalsuper_t", "nalsuper_ms"):
        model = create_model(name, text_dim=8).eval()
        with torch.no_grad():
            for cla in model.modules():
                if isinstance(cla, CrossLayerAttention) and cla.scale is not None:
                    cla.scale.fill_(0.7)
        owners = [m for m in model.modules() if hasattr(m, "blocks")]
        for owner in owners:
            if len(owner.blocks) > 1:
                last = owner.blocks[-1].ifa
                assert type(last) is IFA and last.fusion is not None
                assert all(b.ifa.fusion is None for b in owner.blocks[:-1])
        old = {}
        for key, value in model.state_dict().items():
            # write the pre-move layout: <owner>.blocks.<last>.ifa.fusion.* -> <owner>.fusion.*
            parts = key.split(".")
            if "fusion" in parts and parts[parts.index("fusion") - 1] == "ifa":
                i = parts.index("fusion")
                key = ".".join(parts[: i - 3] + parts[i:])
            old[key] = value
        assert any(k.startswith("fusion.") or ".fusion." in k for k in old)
        fresh = create_model(name, text_dim=8).eval()
        fresh.load_state_dict(old)
        x, text = torch.rand(1, 3, 24, 32), torch.randn(3, 8)
        with torch.no_grad():
            torch.testing.assert_close(fresh(x, text), model(x, text), atol=0, rtol=0)
        torch.testing.assert_close(fresh(x, text), model(x, text).detach(), atol=1e-6, rtol=0)


def test_shipped_checkpoint_from_before_the_fixes_still_loads() -> None:
    model = create_model("nalsuper_s", pretrained=True)
    assert model.blocks[0].tcm.k.bias is None


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("preset", ["nalsuper_t", "nalsuper_s", "nalsuper_ms", "nalsuper"])
def test_autocast_on_cpu_is_finite_and_close_to_float32(preset: str, dtype: torch.dtype) -> None:
    """fp16/bf16 autocast on CPU: no NaN/Inf; mean abs difference to fp32 <= 0.02."""
    torch.manual_seed(0)
    kwargs = {"depth": 4} if preset == "nalsuper" else {}
    model = create_model(preset, text_dim=8, **kwargs).eval()
    x, text = torch.rand(1, 3, 48, 64), torch.randn(3, 8)
    with torch.no_grad():
        ref = model(x, text)
        with torch.autocast("cpu", dtype=dtype):
            out = model(x, text)
    assert torch.isfinite(out).all()
    assert float((out.float() - ref).abs().mean()) < 0.02


def test_keyword_only_options() -> None:
    from textrestore.layers import IFA

    with pytest.raises(TypeError):
        IFA(32, 3)  # type: ignore[misc]  # used to mean reduction=3 silently
    with pytest.raises(TypeError):
        TCM(8, 6, 2)  # type: ignore[misc]


def test_multiscale_pads_any_size_and_text_changes_the_output() -> None:
    torch.manual_seed(0)
    m = MultiScaleNaLSuper(
        widths=(8, 16, 16), enc_depths=(1, 1), mid_depth=1, dec_depths=(1, 1),
        num_heads=2, text_dim=4,
    ).eval()  # fmt: skip
    for h, w in ((1, 1), (5, 9), (13, 17)):
        x = torch.rand(2, 3, h, w)
        assert m(x, torch.randn(2, 4)).shape == x.shape
    with torch.no_grad():
        for block in m.modules():
            if isinstance(block, TCM) and block.gamma is not None:
                block.gamma.fill_(1.0)
    x = torch.rand(1, 3, 16, 16)
    a, b = m(x, torch.randn(3, 4)), m(x, torch.randn(3, 4))
    assert float((a - b).abs().mean()) > 1e-3


def test_safetensors_records_constructor_arguments(tmp_path) -> None:
    """A model trained with overrides loads from its file without repeating them."""
    import json

    from safetensors.torch import save_model

    from textrestore.models import model_from_checkpoint

    model = create_model("nalsuper_t", dim=8, depth=2, use_fusion=False)
    path = tmp_path / "m.safetensors"
    save_model(
        model, str(path), metadata={"preset": "nalsuper_t", "config": json.dumps(model.config)}
    )
    loaded = model_from_checkpoint(path)
    assert loaded.dim == 8 and loaded.depth == 2 and loaded.fusion is None
    x, text = torch.rand(1, 3, 8, 8), torch.randn(1, 2, 384)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, text), model(x, text))

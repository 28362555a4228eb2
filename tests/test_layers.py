"""Properties of the building blocks: shapes, fast vs reference, masks, batch independence."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from textrestore.layers import (
    IFA,
    RTFB,
    TCM,
    ChannelAttention,
    CrossLayerAttention,
    PixelAttention,
    text_attention,
    text_attention_reference,
)
from textrestore.text.embedding import TextEmbedding


@st.composite
def tcm_case(draw: st.DrawFn) -> tuple[TCM, torch.Tensor, torch.Tensor, torch.Tensor]:
    heads = draw(st.integers(1, 4))
    dim = heads * draw(st.integers(1, 6))
    text_dim = draw(st.integers(1, 12))
    b, h, w, length = (draw(st.integers(1, n)) for n in (3, 9, 9, 7))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    tcm = TCM(dim, text_dim, num_heads=heads, init_values=1.0)
    x = torch.randn(b, dim, h, w, generator=g)
    text = torch.randn(b, length, text_dim, generator=g)
    mask = torch.rand(b, length, generator=g) > 0.4
    mask[:, 0] = True  # every sample keeps a real token
    return tcm, x, text, mask


@given(tcm_case())
def test_tcm_shape_and_fast_path_equals_reference(case: tuple) -> None:
    tcm, x, text, mask = case
    for m in (None, mask):
        tcm.fused_attn = True
        fast = tcm(x, text, m)
        tcm.fused_attn = False
        ref = tcm(x, text, m)
        assert fast.shape == x.shape
        torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)


@given(tcm_case())
def test_tcm_padding_tokens_have_no_influence(case: tuple) -> None:
    tcm, x, text, mask = case
    noisy = torch.where(mask[..., None], text, torch.randn_like(text) * 100)
    torch.testing.assert_close(tcm(x, text, mask), tcm(x, noisy, mask), atol=1e-5, rtol=1e-5)


def test_tcm_accepts_text_embedding_and_broadcast_text() -> None:
    tcm = TCM(8, 6, num_heads=2)
    x = torch.randn(3, 8, 4, 5)
    tokens = torch.randn(4, 6)
    out = tcm(x, tokens)
    torch.testing.assert_close(out, tcm(x, tokens.expand(3, 4, 6)))
    torch.testing.assert_close(out, tcm(x, TextEmbedding.from_tensor(tokens)))
    vector_out = tcm(x, torch.randn(6))
    assert vector_out.shape == x.shape


def test_tcm_single_token_is_a_per_pixel_constant_bias() -> None:
    tcm = TCM(8, 5, num_heads=2, init_values=1.0)
    x = torch.randn(2, 8, 6, 7)
    update = tcm(x, torch.randn(2, 1, 5)) - x
    flat = update.flatten(2)
    torch.testing.assert_close(flat, flat[..., :1].expand_as(flat), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(update[0], update[1])  # but it differs between texts


def test_attention_functions_agree_with_strided_query() -> None:
    q = (
        torch.randn(2, 3, 10, 8).transpose(-1, -2).contiguous().transpose(-1, -2)
    )  # strided last dim
    assert q.stride(-1) != 1
    k, v = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 4, 8)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    torch.testing.assert_close(
        text_attention(q, k, v, mask), text_attention_reference(q, k, v, mask), atol=1e-5, rtol=0
    )


def _modules(dim: int = 8, text_dim: int = 6) -> dict[str, torch.nn.Module]:
    return {
        "tcm": TCM(dim, text_dim, num_heads=2),
        "ca": ChannelAttention(dim),
        "pa": PixelAttention(dim),
        "ifa": IFA(dim),
        "rtfb": RTFB(dim, text_dim, num_heads=2),
    }


@pytest.mark.parametrize("name", ["tcm", "ca", "pa", "ifa", "rtfb", "cla"])
def test_batch_independence(name: str) -> None:
    x = torch.randn(4, 8, 7, 6)
    text = torch.randn(4, 3, 6)

    def run(inp: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if name == "cla":
            return cla([inp, inp.flip(-1), inp * 2])
        module = modules[name]
        return module(inp, t) if name in ("tcm", "rtfb") else module(inp)

    modules = _modules()
    cla = CrossLayerAttention(8, 3)
    with torch.no_grad():
        cla.scale.fill_(0.5)
        base = run(x, text)
        x2, text2 = x.clone(), text.clone()
        x2[2] = torch.randn_like(x2[2]) * 5
        text2[2] = torch.randn_like(text2[2])
        changed = run(x2, text2)
    keep = [0, 1, 3]
    torch.testing.assert_close(base[keep], changed[keep], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(base[2], changed[2])


@given(
    b=st.integers(1, 3), c=st.integers(1, 12), h=st.integers(1, 9), w=st.integers(1, 9),
    n=st.integers(1, 4), seed=st.integers(0, 2**31 - 1),
)  # fmt: skip
def test_attention_blocks_keep_shape(b: int, c: int, h: int, w: int, n: int, seed: int) -> None:
    torch.manual_seed(seed)  # input and initial weights replay from the drawn seed
    x = torch.rand(b, c, h, w)
    assert ChannelAttention(c)(x).shape == x.shape
    assert PixelAttention(c)(x).shape == x.shape
    assert IFA(c)(x).shape == x.shape
    assert CrossLayerAttention(c, n)([x] * n).shape == x.shape
    assert IFA(c, num_levels=n)(x, levels=[x] * (n - 1)).shape == x.shape


def test_pixel_attention_map_range() -> None:
    pa = PixelAttention(8)
    attn = pa.attention_map(torch.randn(2, 8, 5, 5))
    assert attn.shape == (2, 1, 5, 5)
    assert bool(((attn > 0) & (attn < 1)).all())


def test_cross_layer_attention_starts_as_concat_projection() -> None:
    cla = CrossLayerAttention(4, 3)
    levels = [torch.randn(2, 4, 5, 5) for _ in range(3)]
    expected = cla.proj(torch.cat(levels, dim=1))
    torch.testing.assert_close(cla(levels), expected)
    affinity = cla.affinity(levels)
    assert affinity.shape == (2, 3, 3)
    torch.testing.assert_close(affinity.sum(-1), torch.ones(2, 3))


def test_every_parameter_gets_a_finite_gradient() -> None:
    for name, module in {**_modules(), "cla": CrossLayerAttention(8, 2)}.items():
        x = torch.randn(2, 8, 5, 4, requires_grad=True)
        if name == "cla":
            with torch.no_grad():
                module.scale.fill_(0.3)
            out = module([x, x.flip(-1)])
        elif name in ("tcm", "rtfb"):
            out = module(x, torch.randn(2, 3, 6))
        else:
            out = module(x)
        out.square().mean().backward()
        for pname, p in module.named_parameters():
            assert p.grad is not None, f"{name}.{pname} got no gradient"
            assert torch.isfinite(p.grad).all(), f"{name}.{pname} has a non-finite gradient"
        assert x.grad is not None and torch.isfinite(x.grad).all()


def test_gradcheck_tcm_and_cross_layer_attention() -> None:
    tcm = TCM(4, 3, num_heads=2, init_values=1.0).double()
    x = torch.randn(1, 4, 2, 3, dtype=torch.float64, requires_grad=True)
    text = torch.randn(1, 3, 3, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, False, True]])
    assert torch.autograd.gradcheck(lambda a, t: tcm(a, t, mask), (x, text))
    tcm.fused_attn = False
    assert torch.autograd.gradcheck(lambda a, t: tcm(a, t, mask), (x, text))
    cla = CrossLayerAttention(2, 2).double()
    with torch.no_grad():
        cla.scale.fill_(0.7)
    a = torch.randn(1, 2, 3, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(1, 2, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, q: cla([p, q]), (a, b))


BAD_TCM_INPUTS = [
    ("rank", lambda: (torch.randn(8, 4, 4), torch.randn(2, 6)), ValueError, "4-D tensor"),
    ("channels", lambda: (torch.randn(1, 5, 4, 4), torch.randn(2, 6)), ValueError, "8 channels"),
    ("int dtype", lambda: (torch.ones(1, 8, 4, 4, dtype=torch.uint8), torch.randn(2, 6)), TypeError, "floating-point"),
    ("text width", lambda: (torch.randn(1, 8, 4, 4), torch.randn(2, 7)), ValueError, "D=6"),
    ("batch", lambda: (torch.randn(2, 8, 4, 4), torch.randn(3, 2, 6)), ValueError, "does not match"),
    ("empty text", lambda: (torch.randn(1, 8, 4, 4), torch.randn(1, 0, 6)), ValueError, "empty text"),
    ("text type", lambda: (torch.randn(1, 8, 4, 4), [1.0, 2.0]), TypeError, "torch.Tensor"),
    ("int text", lambda: (torch.randn(1, 8, 4, 4), torch.ones(2, 6, dtype=torch.long)), TypeError, "floating-point"),
]  # fmt: skip


@pytest.mark.parametrize(
    "label,make,error,message", BAD_TCM_INPUTS, ids=[c[0] for c in BAD_TCM_INPUTS]
)
def test_tcm_bad_input(label: str, make, error: type, message: str) -> None:
    x, text = make()
    with pytest.raises(error, match=message):
        TCM(8, 6, num_heads=2)(x, text)


def test_bad_masks_and_constructor_arguments() -> None:
    tcm = TCM(8, 6, num_heads=2)
    x, text = torch.randn(2, 8, 3, 3), torch.randn(2, 4, 6)
    with pytest.raises(ValueError, match="at least one real token"):
        tcm(x, text, torch.tensor([[True, False, False, False], [False] * 4]))
    with pytest.raises(TypeError, match="bool"):
        tcm(x, text, torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"expected shape \(2, 4\)"):
        tcm(x, text, torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="divisible by num_heads"):
        TCM(10, 6, num_heads=4)
    with pytest.raises(ValueError, match="3 levels of 8 channels"):
        CrossLayerAttention(8, 3)([torch.randn(1, 8, 2, 2)] * 2)
    with pytest.raises(ValueError, match="share one shape"):
        CrossLayerAttention(8, 2)([torch.randn(1, 8, 2, 2), torch.randn(1, 8, 3, 2)])
    with pytest.raises(ValueError, match="num_levels=None"):
        IFA(8)(torch.randn(1, 8, 2, 2), levels=[torch.randn(1, 8, 2, 2)])
    with pytest.raises(ValueError, match="text is required"):
        RTFB(8, 6, num_heads=2)(torch.randn(1, 8, 2, 2))


def _plain_layer_attention(cla: CrossLayerAttention, levels: list[torch.Tensor]) -> torch.Tensor:
    """HAN's layer attention written out in float64: ``proj(F + scale · softmax(τ cos) F)``."""
    f = torch.stack([lv.double() for lv in levels], dim=1)  # (B, N, C, H, W)
    b, n = f.shape[:2]
    flat = f.reshape(b, n, -1)
    cos = torch.nn.functional.cosine_similarity(flat[:, :, None], flat[:, None, :], dim=-1)
    attn = (cos * float(cla.temperature.detach())).softmax(-1)
    fused = flat + float(cla.scale.detach()) * torch.einsum("bnm,bmk->bnk", attn, flat)
    weight, bias = cla.proj.weight.double(), cla.proj.bias.double()
    return torch.nn.functional.conv2d(fused.reshape(b, -1, *f.shape[-2:]), weight, bias)


@given(
    seed=st.integers(0, 2**16),
    scale=st.floats(-1.0, 2.0),
    temperature=st.floats(0.5, 20.0),
    levels=st.integers(2, 4),
    layout=st.sampled_from(["channels_last", "contiguous", "stacked"]),
)
def test_folded_fusion_equals_the_plain_formula_with_its_gradients(
    seed: int, scale: float, temperature: float, levels: int, layout: str
) -> None:
    """The fusion folds the affinity into the projection (no A·F is formed): same output
    and same gradients as the two-step formula, for lists of channels_last or contiguous
    levels and for a stacked (B, N, C, H, W) tensor."""
    gen = torch.Generator().manual_seed(seed)
    cla = CrossLayerAttention(3, levels, temperature=temperature)
    with torch.no_grad():
        cla.scale.fill_(scale)
        cla.proj.weight.copy_(torch.randn(cla.proj.weight.shape, generator=gen))
        cla.proj.bias.copy_(torch.randn(3, generator=gen))
    raw = [torch.randn(2, 3, 5, 6, generator=gen) for _ in range(levels)]
    if layout == "channels_last":
        cla = cla.to(memory_format=torch.channels_last)
        raw = [lv.contiguous(memory_format=torch.channels_last) for lv in raw]
    xs = [lv.clone().requires_grad_() for lv in raw]
    out = cla(torch.stack(xs, 1) if layout == "stacked" else xs)
    ref_in = [lv.clone().requires_grad_() for lv in raw]
    ref = _plain_layer_attention(cla, ref_in)
    torch.testing.assert_close(out.double(), ref, atol=1e-4, rtol=1e-4)
    probe = torch.randn(out.shape, generator=gen)
    grads = torch.autograd.grad((out * probe).sum(), [*xs, cla.scale, cla.proj.weight])
    ref_grads = torch.autograd.grad((ref * probe.double()).sum(), ref_in)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g.double(), r.double(), atol=1e-4, rtol=1e-4)
    assert all(torch.isfinite(g).all() for g in grads)

"""NaLSuper and the model registry."""

from __future__ import annotations

import io

import pytest
import torch

from textrestore import NaLSuper, create_model, list_models, register_model
from textrestore.models.cli import count_flops, format_table, model_table

TEXT_DIM = 384


def tiny(**overrides: object) -> NaLSuper:
    model = create_model("nalsuper_t", **overrides)
    assert isinstance(model, NaLSuper)
    return model.eval()


def test_registry_lists_presets_and_rejects_unknown_and_duplicate_names() -> None:
    assert {"nalsuper", "nalsuper_s", "nalsuper_t"} <= set(list_models())
    assert list_models("*_t") == ["nalsuper_t"]
    with pytest.raises(ValueError, match="registered models: .*nalsuper_s"):
        create_model("nalsuper_xxl")
    with pytest.raises(ValueError, match="already registered"):

        @register_model(name="nalsuper")
        def _dup(pretrained: bool = False) -> torch.nn.Module:
            return torch.nn.Identity()


def test_paper_preset_matches_the_paper() -> None:
    with torch.device("meta"):
        model = create_model("nalsuper")
    assert (model.dim, model.depth, model.text_dim) == (64, 15, 512)
    assert len(model.blocks) == 15
    assert model.stem.kernel_size == (3, 3)


def test_overrides_reach_the_constructor() -> None:
    model = tiny(dim=8, depth=2, num_heads=2, text_dim=16)
    assert (model.dim, model.depth, model.text_dim) == (8, 2, 16)


@pytest.mark.parametrize("size", [(1, 1), (37, 53), (2, 9)])
def test_output_has_input_size_for_odd_sizes(size: tuple[int, int]) -> None:
    model = tiny()
    image = torch.rand(2, 3, *size)
    out = model(image, torch.randn(5, TEXT_DIM))
    assert out.shape == image.shape
    assert out.is_contiguous()
    assert torch.isfinite(out).all()


def test_global_residual_identity_when_tail_is_zero() -> None:
    model = tiny()
    with torch.no_grad():
        model.tail.weight.zero_()
        model.tail.bias.zero_()
    image = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(model(image, torch.randn(TEXT_DIM)), image)


def test_text_changes_the_output_and_base_model_ignores_it() -> None:
    image = torch.rand(1, 3, 12, 12)
    model = tiny()
    with torch.no_grad():  # LayerScale 1: the text update is as large as the features
        for block in model.blocks:
            block.tcm.gamma.fill_(1.0)
        a, b = model(image, torch.randn(3, TEXT_DIM)), model(image, torch.randn(3, TEXT_DIM))
    # Two random texts move the output by a visible amount (1/255 ≈ 0.004), not by rounding.
    assert float((a - b).abs().mean()) > 4e-3
    base = tiny(use_tcm=False)
    torch.testing.assert_close(
        base(image, torch.randn(3, TEXT_DIM)), base(image, torch.randn(3, TEXT_DIM))
    )
    assert not any(block.tcm is not None for block in base.blocks)


def test_batch_independence() -> None:
    model = tiny()
    image, text = torch.rand(3, 3, 10, 11), torch.randn(3, 4, TEXT_DIM)
    with torch.no_grad():
        base = model(image, text)
        image2, text2 = image.clone(), text.clone()
        image2[1], text2[1] = torch.rand(3, 10, 11), torch.randn(4, TEXT_DIM)
        changed = model(image2, text2)
    torch.testing.assert_close(base[[0, 2]], changed[[0, 2]], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(base[1], changed[1])


def test_fused_and_reference_attention_agree_for_every_preset() -> None:
    for name in list_models("nalsuper*"):
        torch.manual_seed(0)
        kwargs = {"depth": 2} if name == "nalsuper" else {}
        model = create_model(name, **kwargs).eval()
        image = torch.rand(1, 3, 9, 12)
        text = torch.randn(1, 6, model.text_dim)
        mask = torch.tensor([[True] * 4 + [False] * 2])
        from textrestore.text.embedding import TextEmbedding

        emb = TextEmbedding.from_tensor(text, mask)
        with torch.no_grad():
            fast = model(image, emb)
            for m in model.modules():
                if hasattr(m, "fused_attn"):
                    m.fused_attn = False
            ref = model(image, emb)
        torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5, msg=name)


def test_state_dict_round_trip_gives_identical_output() -> None:
    model = tiny()
    image, text = torch.rand(1, 3, 16, 16), torch.randn(4, TEXT_DIM)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    clone = tiny()
    clone.load_state_dict(torch.load(buffer, weights_only=True))
    torch.testing.assert_close(model(image, text), clone(image, text), atol=0, rtol=0)


def test_every_parameter_gets_a_finite_gradient() -> None:
    model = tiny()
    with torch.no_grad():
        model.fusion.scale.fill_(0.1)
    model(torch.rand(2, 3, 8, 8), torch.randn(2, 3, TEXT_DIM)).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.slow
def test_torch_compile_matches_eager() -> None:
    model = tiny()
    image, text = torch.rand(1, 3, 16, 20), torch.randn(1, 4, TEXT_DIM)
    compiled = torch.compile(model)
    with torch.no_grad():
        torch.testing.assert_close(compiled(image, text), model(image, text), atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_torch_export_matches_eager_with_dynamic_size() -> None:
    model = tiny()
    image, text = torch.rand(1, 3, 16, 20), torch.randn(1, 4, TEXT_DIM)
    dims = {"image": {2: torch.export.Dim("h", min=2, max=512), 3: torch.export.Dim("w", min=2, max=512)},
            "text": None}  # fmt: skip
    exported = torch.export.export(model, (image, text), dynamic_shapes=dims)
    for size in [(16, 20), (37, 53)]:
        x = torch.rand(1, 3, *size)
        with torch.no_grad():
            torch.testing.assert_close(
                exported.module()(x, text), model(x, text), atol=1e-5, rtol=1e-5
            )


BAD_INPUTS = [
    ("rank", lambda: torch.rand(3, 8, 8), None, ValueError, r"\(B, 3, H, W\)"),
    ("channels", lambda: torch.rand(1, 4, 8, 8), None, ValueError, "3 channels"),
    ("integer", lambda: torch.zeros(1, 3, 8, 8, dtype=torch.uint8), None, TypeError, "floating-point"),
    ("numpy", lambda: torch.rand(1, 3, 8, 8).numpy(), None, TypeError, "torch.Tensor"),
    ("text width", lambda: torch.rand(1, 3, 8, 8), lambda: torch.randn(4, 10), ValueError, "D=384"),
    ("text batch", lambda: torch.rand(2, 3, 8, 8), lambda: torch.randn(3, 4, 384), ValueError, "does not match 2 images"),
    ("prompt count", lambda: torch.rand(2, 3, 8, 8), lambda: ["a", "b", "c"], ValueError, "3 prompts for 2 images"),
    ("empty prompt list", lambda: torch.rand(2, 3, 8, 8), lambda: [], ValueError, "empty list"),
    ("empty text", lambda: torch.rand(1, 3, 8, 8), lambda: torch.randn(1, 0, 384), ValueError, "empty text"),
    ("text type", lambda: torch.rand(1, 3, 8, 8), lambda: 3.5, TypeError, "text must be"),
]  # fmt: skip


@pytest.mark.parametrize(
    "label,image,text,error,message", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input(label: str, image, text, error: type, message: str) -> None:
    model = tiny()
    with pytest.raises(error, match=message):
        model(image(), text() if text is not None else torch.randn(2, TEXT_DIM))


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="divisible by num_heads"):
        NaLSuper(dim=10, num_heads=4)
    with pytest.raises(ValueError, match="depth must be a positive int"):
        NaLSuper(depth=0)


def test_flop_table_counts_the_paper_preset() -> None:
    flops = count_flops("nalsuper")
    assert 600e9 < flops < 800e9  # DESIGN.md: about 720 GFLOPs at 400x600
    rows = model_table()
    table = format_table(rows, 400, 600)
    assert "nalsuper_s" in table and "GFLOPs @ 400x600" in table
    by_name = {r["model"]: r for r in rows}
    assert (
        by_name["nalsuper_t"]["gflops"]
        < by_name["nalsuper_s"]["gflops"]
        < by_name["nalsuper"]["gflops"]
    )

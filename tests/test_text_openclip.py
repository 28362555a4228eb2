"""openclip backend: real open_clip tokenizer and ViT-B-32 text tower (random weights, offline)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

open_clip = pytest.importorskip("open_clip")

from textrestore.text import OpenCLIPTextEncoder, create_text_encoder  # noqa: E402

PROMPTS = ["normal light image", "a", "a very dark photo of a dim room at night"]


@pytest.fixture(scope="module")
def clip_pair():
    """An open_clip ViT-B-32 (random weights), its reference encode_text, and our encoder."""
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    ids = tokenizer(PROMPTS)
    with torch.no_grad():
        ref = model.encode_text(ids)
    enc = OpenCLIPTextEncoder.from_model(model, tokenizer, name="openclip:ViT-B-32")
    return enc, ids, ref


def test_token_states_mask_and_pooled(clip_pair) -> None:
    enc, ids, ref = clip_pair
    emb = enc.encode(PROMPTS)
    assert enc.dim == 512 and enc.max_length == 77
    assert emb.tokens.shape == (3, 77, 512) and emb.pooled.shape == (3, 512)
    # mask: exactly the tokens up to and including end-of-text (the largest id)
    eot = ids.argmax(-1)
    assert ids[0, eot[0]].item() == enc.tokenizer.eot_token_id
    expected = torch.arange(77)[None] <= eot[:, None]
    assert torch.equal(emb.mask, expected)
    assert emb.mask.sum(1).tolist() == [5, 3, int(eot[2]) + 1]
    torch.testing.assert_close(emb.pooled, ref, atol=1e-5, rtol=0)
    # token states = ln_final(transformer(token_embedding + positional, causal mask))
    m = enc.model
    with torch.no_grad():
        x = m.token_embedding(ids) + m.positional_embedding
        x = m.ln_final(m.transformer(x, attn_mask=m.attn_mask))
    torch.testing.assert_close(emb.tokens, x, atol=1e-5, rtol=0)


def test_frozen_and_vision_dropped(clip_pair) -> None:
    enc = clip_pair[0]
    assert isinstance(enc.model.visual, torch.nn.Identity)
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.training
    assert sum(p.numel() for p in enc.parameters()) < 70_000_000  # text tower only
    assert enc.device == torch.device("cpu")


def test_random_weights_warn_and_registry_name() -> None:
    with pytest.warns(UserWarning, match="RANDOM weights"):
        enc = create_text_encoder("openclip:ViT-B-32", pretrained=None)
    assert isinstance(enc, OpenCLIPTextEncoder) and enc.name == "openclip:ViT-B-32"


def test_local_text_only_file_roundtrip(clip_pair, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    enc, ids, ref = clip_pair
    text_sd = {k: v.contiguous() for k, v in enc.model.state_dict().items()}
    path = tmp_path / "clip_text.safetensors"
    save_file(text_sd, str(path))
    loaded = create_text_encoder("openclip:ViT-B-32", pretrained=str(path))
    torch.testing.assert_close(loaded.encode(PROMPTS).pooled, ref, atol=1e-5, rtol=0)


def test_missing_local_file_fails_fast() -> None:
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match=r"/no/such/dir/clip_b32\.safetensors"):
        create_text_encoder("openclip:ViT-B-32", pretrained="/no/such/dir/clip_b32.safetensors")
    assert time.perf_counter() - start < 5.0


def test_missing_local_dir_fails_fast(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="open_clip_config.json"):
        create_text_encoder("openclip:ViT-B-32", pretrained=f"local-dir:{tmp_path}")


def test_offline_tag_fails_fast_naming_the_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as info:
        create_text_encoder("openclip:ViT-B-32", pretrained="openai", cache_dir=str(tmp_path))
    assert time.perf_counter() - start < 5.0
    msg = str(info.value)
    assert "open_clip_pytorch_model.bin" in msg and "HF_HUB_OFFLINE" in msg
    assert "timm/vit_base_patch32_clip_224.openai" in msg


def test_unknown_tag_and_arch() -> None:
    with pytest.raises(ValueError, match="tags for ViT-B-32"):
        create_text_encoder("openclip:ViT-B-32", pretrained="no-such-tag")
    with pytest.raises(ValueError, match="unknown architecture"):
        create_text_encoder("openclip:ViT-Nope", pretrained=None)

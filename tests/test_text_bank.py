"""PromptBank: encode once, cache, state_dict round trips, learned prompts, errors."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from textrestore.text import (
    LearnedTextEncoder,
    PromptBank,
    TextEmbedding,
    TextEncoder,
    UnknownPromptError,
)


class CountingEncoder(TextEncoder):
    """Deterministic fake encoder: one token per word, counts its calls."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__(name="counting", dim=dim, max_length=16)
        self.table = nn.Embedding(1000, dim)
        self.calls: list[list[str]] = []
        self.freeze()

    def forward(self, prompts: list[str]) -> TextEmbedding:
        self.calls.append(list(prompts))
        ids = torch.zeros(len(prompts), 16, dtype=torch.long)
        mask = torch.zeros(len(prompts), 16, dtype=torch.bool)
        for row, p in enumerate(prompts):
            words = [sum(map(ord, w)) % 1000 for w in p.split()][:16] or [0]
            ids[row, : len(words)] = torch.tensor(words)
            mask[row, : len(words)] = True
        return TextEmbedding.from_tensor(self.table(ids), mask)


class Holder(nn.Module):
    def __init__(self, text_dim: int = 8) -> None:
        super().__init__()
        self.proj = nn.Linear(text_dim, 2)
        self.bank = PromptBank(text_dim)

    def forward(self, prompts: list[str]) -> torch.Tensor:
        emb = self.bank(prompts)
        return self.proj(emb.pooled) + emb.tokens.sum(1).mean(-1, keepdim=True)


def _roundtrip(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_encodes_each_prompt_once() -> None:
    enc = CountingEncoder()
    bank = PromptBank(8)
    bank.attach_encoder(enc)
    first = bank(["normal light image"])
    for _ in range(100):
        out = bank(["normal light image"])
    assert len(enc.calls) == 1
    assert torch.equal(out.tokens, first.tokens)
    bank(["a brand new prompt"])
    assert len(enc.calls) == 2
    # several unknown prompts, with repeats, go to the encoder in one batch
    bank(["normal light image", "x y", "z", "x y"])
    assert enc.calls[-1] == ["x y", "z"] and len(enc.calls) == 3
    assert bank.prompts == ["normal light image", "a brand new prompt", "x y", "z"]


def test_padding_mask_and_values_match_encoder() -> None:
    enc = CountingEncoder()
    bank = PromptBank(8)
    bank.attach_encoder(enc)
    prompts = ["one", "one two three", "one two"]
    emb = bank(prompts)
    ref = enc.encode(prompts)
    assert emb.tokens.shape == (3, 3, 8)  # padded to the longest prompt, not to 16
    assert emb.mask.tolist() == [[True, False, False], [True, True, True], [True, True, False]]
    torch.testing.assert_close(emb.tokens[emb.mask], ref.tokens[ref.mask])
    torch.testing.assert_close(emb.pooled, ref.pooled)
    assert not emb.tokens.requires_grad


def test_cached_batches_are_reused() -> None:
    bank = PromptBank(8)
    bank.attach_encoder(CountingEncoder())
    a = bank(["a b", "c"])
    assert bank(["a b", "c"]) is a  # assembled once, then served from the cache
    assert bank(["c", "a b"]) is not a


def test_state_dict_roundtrip_into_fresh_model() -> None:
    enc = CountingEncoder()
    model = Holder()
    model.bank.attach_encoder(enc)
    prompts = ["normal light image", "dim", "normal light image"]
    ref = model(prompts)
    sd = _roundtrip(model.state_dict())
    assert not any("table" in k for k in sd)  # the encoder's weights are not saved
    assert sd["bank.prompt_0_text"].dtype == torch.uint8
    fresh = Holder()
    result = fresh.load_state_dict(sd)
    assert not result.missing_keys and not result.unexpected_keys
    assert fresh.bank.prompts == ["normal light image", "dim"]
    torch.testing.assert_close(fresh(prompts), ref)
    assert len(enc.calls) == 1


def test_load_replaces_prompts_and_checks_dim() -> None:
    bank = PromptBank(8)
    bank.attach_encoder(CountingEncoder())
    bank(["old prompt"])
    other = PromptBank(8)
    other.attach_encoder(CountingEncoder())
    other(["new prompt", "second"])
    bank.load_state_dict(other.state_dict())
    assert bank.prompts == ["new prompt", "second"]
    torch.testing.assert_close(bank(["second"]).tokens, other(["second"]).tokens)
    wide = PromptBank(16)
    with pytest.raises(RuntimeError, match="text_dim differs"):
        wide.load_state_dict(other.state_dict())


def test_unknown_prompt_without_encoder_names_known_ones() -> None:
    bank = PromptBank(8)
    bank.attach_encoder(CountingEncoder())
    bank(["normal light image"])
    bank.attach_encoder(None)
    assert bank(["normal light image"]).tokens.shape[0] == 1
    with pytest.raises(KeyError, match="'normal light image'") as info:
        bank(["something else"])
    assert isinstance(info.value, ValueError) and isinstance(info.value, UnknownPromptError)
    assert "something else" in str(info.value)
    with pytest.raises(KeyError, match="known prompts: none"):
        PromptBank(8)(["x"])


def test_dim_mismatch_and_bad_input() -> None:
    bank = PromptBank(16)
    with pytest.raises(ValueError, match="dim=8.*text_dim=16"):
        bank.attach_encoder(CountingEncoder(dim=8))
    with pytest.raises(TypeError, match="TextEncoder"):
        bank.attach_encoder(nn.Linear(2, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one prompt"):
        bank([])
    with pytest.raises(ValueError, match="text_dim"):
        PromptBank(0)


def test_moves_with_to() -> None:
    bank = PromptBank(8)
    bank.attach_encoder(CountingEncoder())
    assert bank(["a"]).tokens.dtype == torch.float32
    bank.to(torch.float64)
    emb = bank(["a", "b c"])  # known and new prompt, both on the bank's dtype
    assert emb.tokens.dtype == torch.float64 and emb.pooled.dtype == torch.float64
    assert emb.mask.dtype == torch.bool
    assert bank.prompt_0_mask.dtype == torch.bool and bank.prompt_0_text.dtype == torch.uint8


def test_learned_prompts_train_save_and_restore() -> None:
    model = Holder()
    model.bank.attach_encoder(LearnedTextEncoder(n_tokens=3, dim=8, prompts=["normal"]))
    names = [n for n, _ in model.named_parameters()]
    assert "bank.encoder.ctx_0" in names  # optimised with the model
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    before = model.bank.encoder.ctx_0.detach().clone()
    model(["normal"]).sum().backward()
    opt.step()
    assert not torch.equal(before, model.bank.encoder.ctx_0)
    ref = model(["normal"])
    sd = _roundtrip(model.state_dict())
    fresh = Holder()
    fresh.load_state_dict(sd)
    assert isinstance(fresh.bank.encoder, LearnedTextEncoder)
    assert fresh.bank.prompts == ["normal"]
    torch.testing.assert_close(fresh(["normal"]), ref)
    assert fresh.bank.encoder.ctx_0.requires_grad


def test_learned_prompts_load_in_place_keeps_parameter_identity() -> None:
    """Loading a checkpoint with the same prompts copies values into the existing
    Parameters, so an optimizer built before loading keeps training the right tensors."""
    from textrestore.text import LearnedTextEncoder

    enc = LearnedTextEncoder(n_tokens=2, dim=4)
    enc.add_prompts(["a", "b"])
    params = list(enc.parameters())
    other = LearnedTextEncoder(n_tokens=2, dim=4)
    other.add_prompts(["a", "b"])
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    enc.load_state_dict(other.state_dict())
    assert [id(p) for p in enc.parameters()] == [id(p) for p in params]
    for mine, theirs in zip(enc.parameters(), other.parameters()):
        assert torch.equal(mine, theirs)

"""Text encoder registry: names, variants, duplicates, entry-point plugins, lazy imports."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from textrestore.text import (
    ENTRY_POINT_GROUP,
    LearnedTextEncoder,
    TextEmbedding,
    TextEncoder,
    create_text_encoder,
    list_text_encoders,
    register_text_encoder,
)
from textrestore.text import registry as reg


class ConstEncoder(TextEncoder):
    def __init__(self, variant: str | None = None, dim: int = 4) -> None:
        super().__init__(name=f"const:{variant}", dim=dim, max_length=2)
        self.w = torch.nn.Parameter(torch.ones(dim))
        self.freeze()

    def forward(self, prompts: list[str]) -> TextEmbedding:
        return TextEmbedding.from_tensor(self.w.expand(len(prompts), 2, -1).clone())


@pytest.fixture
def clean_registry():
    saved = dict(reg._REGISTRY)
    yield
    reg._REGISTRY.clear()
    reg._REGISTRY.update(saved)


def test_builtins_listed() -> None:
    assert {"openclip", "minilm", "sentence", "learned"} <= set(list_text_encoders())


def test_register_variant_and_frozen(clean_registry) -> None:
    register_text_encoder("const-test")(ConstEncoder)
    enc = create_text_encoder("const-test:abc", dim=6)
    assert enc.name == "const:abc" and enc.dim == 6
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.training  # frozen encoders stay in eval mode
    emb = enc.encode("one prompt")
    assert emb.tokens.shape == (1, 2, 6) and not emb.tokens.requires_grad
    assert "const-test" in list_text_encoders()


def test_duplicate_name_raises(clean_registry) -> None:
    register_text_encoder("dup-test")(ConstEncoder)
    with pytest.raises(ValueError, match="already registered"):
        register_text_encoder("dup-test")(ConstEncoder)
    with pytest.raises(ValueError, match="already registered"):
        register_text_encoder("openclip")(ConstEncoder)


def test_unknown_name_lists_available() -> None:
    with pytest.raises(ValueError, match=r"unknown text encoder 'nope:x'.*openclip"):
        create_text_encoder("nope:x")
    with pytest.raises(TypeError):
        create_text_encoder("")


def test_factory_must_return_encoder(clean_registry) -> None:
    register_text_encoder("bad-test")(lambda **kw: object())
    with pytest.raises(TypeError, match="expected a textrestore.text.TextEncoder"):
        create_text_encoder("bad-test")


def test_encode_checks_prompts_and_output() -> None:
    enc = ConstEncoder(dim=4)
    with pytest.raises(ValueError, match="at least one prompt"):
        enc.encode([])
    with pytest.raises(TypeError, match="every prompt to be a str"):
        enc.encode(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="str or a sequence"):
        enc.encode(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive int"):
        ConstEncoder(dim=0)


def test_learned_is_the_trainable_one() -> None:
    enc = create_text_encoder("learned:3", dim=8)
    assert isinstance(enc, LearnedTextEncoder) and enc.trainable
    emb = enc.encode(["a", "b", "a"])
    assert emb.tokens.shape == (3, 3, 8) and emb.tokens.requires_grad
    assert torch.equal(emb.tokens[0], emb.tokens[2])
    emb.pooled.sum().backward()
    assert enc.ctx_0.grad is not None
    # same prompt, same initial vectors in another instance
    assert torch.equal(LearnedTextEncoder(3, 8).encode("a").tokens, emb.tokens[:1].detach())
    with pytest.raises(ValueError, match="n_tokens"):
        create_text_encoder("learned:zero", dim=8)


def _write_plugin(root: Path, name: str) -> None:
    """A tiny installed distribution: a module plus its .dist-info with an entry point."""
    (root / "trplugin_demo.py").write_text(
        textwrap.dedent(
            """
            import torch
            from textrestore.text import TextEmbedding, TextEncoder

            class DemoEncoder(TextEncoder):
                def __init__(self, variant=None, dim=5):
                    super().__init__(name=f"demo:{variant}", dim=dim, max_length=1)
                    self.freeze()

                def forward(self, prompts):
                    return TextEmbedding.from_tensor(torch.ones(len(prompts), 1, self.dim))
            """
        )
    )
    info = root / "trplugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: trplugin-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n{name} = trplugin_demo:DemoEncoder\n"
    )


def test_entry_point_plugin_found(tmp_path: Path, monkeypatch, clean_registry) -> None:
    _write_plugin(tmp_path, "demo-plugin")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "demo-plugin" in list_text_encoders()
    assert "trplugin_demo" not in sys.modules  # listed without importing the plugin
    enc = create_text_encoder("demo-plugin:v1", dim=7)
    assert type(enc).__name__ == "DemoEncoder" and enc.name == "demo:v1"
    assert enc.encode(["x", "y"]).tokens.shape == (2, 1, 7)
    monkeypatch.delitem(sys.modules, "trplugin_demo", raising=False)


def test_import_loads_no_optional_backend() -> None:
    code = (
        "import sys, textrestore, textrestore.text\n"
        "from textrestore.text import create_text_encoder, list_text_encoders\n"
        "list_text_encoders(); create_text_encoder('learned:2', dim=4).encode(['a'])\n"
        "bad = [m for m in ('open_clip', 'transformers', 'sentence_transformers') "
        "if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    src = str(Path(__file__).resolve().parents[1] / "src")
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr


def test_text_encoder_without_forward_cannot_be_built() -> None:
    from textrestore.text import TextEncoder

    class Incomplete(TextEncoder):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()

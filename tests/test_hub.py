"""Hugging Face Hub conventions: save_pretrained / from_pretrained / push_to_hub, offline errors."""

from __future__ import annotations

import inspect
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import textrestore
from textrestore import NaLSuper, create_model, list_models
from textrestore.models import (
    HubUnavailableError,
    MultiScaleNaLSuper,
    TextGuidedModel,
    convert_checkpoint,
    from_pretrained,
    model_from_checkpoint,
)
from textrestore.text import TextEmbedding

PROMPTS = ["normal light image", "a bright, warm photo"]


def _perturbed(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial weights (LayerScale, fusion scales start at 0) and two stored prompts."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    d = model.text_dim
    for i, prompt in enumerate(PROMPTS):
        n = 3 + 2 * i
        emb = TextEmbedding(
            torch.randn(1, n, d, generator=g), torch.ones(1, n, dtype=torch.bool),
            torch.randn(1, d, generator=g),
        )  # fmt: skip
        model.prompt_bank.add(prompt, emb)
    return model.eval()


def _outputs(model: torch.nn.Module, size: tuple[int, int] = (16, 24)) -> list[torch.Tensor]:
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return [model(x), model(x, PROMPTS[1]), model(x, PROMPTS)]


@pytest.mark.parametrize("preset", list_models())
def test_round_trip_every_preset(preset: str, tmp_path: Path) -> None:
    """The real preset architectures at a tiny image size: identical output after loading."""
    model = _perturbed(create_model(preset))
    metrics = {"model": {"psnr": 25.5, "ssim": 0.847}, "input": {"psnr": 7.4, "ssim": 0.216}}
    model.save_pretrained(tmp_path, model_card_kwargs={"metrics": metrics})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "README.md", "config.json", "model.safetensors",
    ]  # fmt: skip
    config = json.loads((tmp_path / "config.json").read_text())
    params = list(inspect.signature(type(model).__init__).parameters)[1:]
    assert set(params) <= set(config), set(params) - set(config)
    assert config["architecture"] == type(model).__name__
    assert config["preset"] == preset
    assert config["prompts"] == PROMPTS
    assert config["textrestore_version"] == textrestore.__version__
    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as f:
        assert f.metadata()["preset"] == preset
        assert any(k.startswith("prompt_bank.prompt_1_tokens") for k in f.keys())  # noqa: SIM118
    card = (tmp_path / "README.md").read_text()
    assert "library_name: textrestore" in card and "25.5000" in card and "0.8470" in card
    for prompt in PROMPTS:
        assert f"- `{prompt}`" in card

    expected = _outputs(model)
    for loaded in (textrestore.from_pretrained(tmp_path), type(model).from_pretrained(tmp_path),
                   TextGuidedModel.from_pretrained(str(tmp_path))):  # fmt: skip
        assert type(loaded) is type(model) and not loaded.training
        assert loaded.config == model.config
        assert loaded.prompt_bank.prompts == PROMPTS
        for want, got in zip(expected, _outputs(loaded)):
            assert torch.equal(want, got)
    # the shipped-weights loader reads the same file (preset from its metadata)
    other = model_from_checkpoint(tmp_path / "model.safetensors").eval()
    assert torch.equal(_outputs(other)[1], expected[1])


@pytest.mark.parametrize(
    ("preset", "overrides"),
    [
        ("nalsuper_t", {"dim": 8, "depth": 2, "act_layer": torch.nn.GELU, "init_values": None,
                        "layer_attention": False, "channels_last": False}),
        ("nalsuper_t", {"dim": 8, "depth": 1, "use_fusion": False, "text_dim": 8}),
        ("nalsuper_ms", {"widths": (8, 16, 24), "enc_depths": (1, 2), "mid_depth": 1,
                         "dec_depths": (2, 1), "num_heads": 2, "text_dim": 8}),
    ],
)  # fmt: skip
def test_round_trip_overrides(preset: str, overrides: dict, tmp_path: Path) -> None:
    model = _perturbed(create_model(preset, **overrides))
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["preset"] is None  # not a registered preset any more
    if "act_layer" in overrides:
        assert config["act_layer"] == "torch.nn.GELU"
    loaded = textrestore.from_pretrained(tmp_path)
    if "act_layer" in overrides:
        assert any(isinstance(m, torch.nn.GELU) for m in loaded.modules())
        assert not any(isinstance(m, torch.nn.ReLU) for m in loaded.modules())
    for want, got in zip(_outputs(model, (13, 21)), _outputs(loaded, (13, 21))):
        assert torch.equal(want, got)
    # a constructor argument passed to from_pretrained overrides the config
    assert textrestore.from_pretrained(tmp_path, channels_last=True).config["channels_last"]


def test_config_argument_and_resave(tmp_path: Path) -> None:
    model = _perturbed(create_model("nalsuper_t", dim=8, depth=1))
    model.save_pretrained(tmp_path, config={"note": "fine-tuned"})
    assert json.loads((tmp_path / "config.json").read_text())["note"] == "fine-tuned"
    loaded = NaLSuper.from_pretrained(tmp_path)
    loaded.save_pretrained(tmp_path / "again")
    again = NaLSuper.from_pretrained(tmp_path / "again")
    for want, got in zip(_outputs(model), _outputs(again)):
        assert torch.equal(want, got)


def test_load_errors(tmp_path: Path) -> None:
    ms = create_model("nalsuper_ms", widths=(8, 16), enc_depths=(1,), dec_depths=(1,),
                      mid_depth=1, num_heads=2, text_dim=8)  # fmt: skip
    ms.save_pretrained(tmp_path / "ms")
    with pytest.raises(ValueError, match="holds a MultiScaleNaLSuper"):
        NaLSuper.from_pretrained(tmp_path / "ms")
    assert isinstance(MultiScaleNaLSuper.from_pretrained(tmp_path / "ms"), MultiScaleNaLSuper)
    with pytest.raises(FileNotFoundError, match="no folder"):
        from_pretrained(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no folder"):
        from_pretrained("./not/a/repo/id")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        from_pretrained(tmp_path / "empty")
    with pytest.raises(ValueError, match="convert_checkpoint"):
        from_pretrained(tmp_path / "ms" / "model.safetensors")
    with pytest.raises(TypeError, match="repo id"):
        from_pretrained(3)  # type: ignore[arg-type]
    # strict: a weights file missing a tensor does not load silently
    state = load_file(str(tmp_path / "ms" / "model.safetensors"))
    state.pop("tail.weight")
    save_file(state, str(tmp_path / "ms" / "model.safetensors"))
    with pytest.raises(RuntimeError, match="tail.weight"):
        from_pretrained(tmp_path / "ms")
    # a config naming a class that is not a torch.nn activation is refused
    nal = create_model("nalsuper_t", dim=8, depth=1)
    nal.save_pretrained(tmp_path / "nal")
    cfg_path = tmp_path / "nal" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg_path.write_text(json.dumps({**cfg, "act_layer": "os.system"}))
    with pytest.raises(ValueError, match="act_layer"):
        from_pretrained(tmp_path / "nal")
    cfg_path.write_text(json.dumps({**cfg, "architecture": "Nope"}))
    with pytest.raises(ValueError, match="architecture='Nope'"):
        from_pretrained(tmp_path / "nal")


def test_trainer_checkpoint_converts_with_one_call(tmp_path: Path) -> None:
    from textrestore.train import TrainConfig, Trainer

    class Pairs(torch.utils.data.Dataset):
        prompts = ["brighter", "much brighter"]

        def __len__(self) -> int:
            return 4

        def __getitem__(self, i: int) -> dict:
            hi = torch.rand(3, 12, 12, generator=torch.Generator().manual_seed(i))
            return {"low": hi * 0.3, "high": hi, "name": str(i), "prompt": self.prompts[i % 2]}

    cfg = TrainConfig(
        model="nalsuper_t", text_encoder="learned:2", steps=2, ema_decay=0.5, log_every=0,
        model_args={"dim": 8, "depth": 1, "num_heads": 2, "text_dim": 8},
        data={"batch_size": 2}, out_dir=str(tmp_path / "run"),
    )  # fmt: skip
    Trainer(cfg, train_set=Pairs(), val_set=False).fit()
    ckpt = tmp_path / "run" / "last.pt"

    out = convert_checkpoint(ckpt, tmp_path / "hf")
    loaded = textrestore.from_pretrained(out)
    reference = model_from_checkpoint(ckpt).eval()  # EMA weights, as convert_checkpoint
    x = torch.rand(2, 3, 10, 14)
    with torch.no_grad():
        for text in (None, "brighter", ["brighter", "much brighter"]):
            assert torch.equal(loaded(x, text), reference(x, text))
    card = (out / "README.md").read_text()
    assert "- `much brighter`" in card and "steps | 2" in card
    assert set(Pairs.prompts) <= set(json.loads((out / "config.json").read_text())["prompts"])
    with pytest.raises(ValueError, match="not a trainer checkpoint"):
        torch.save({"a": torch.zeros(1)}, tmp_path / "bare.pt")
        convert_checkpoint(tmp_path / "bare.pt", tmp_path / "x")


def test_push_to_hub_uploads_the_saved_folder(tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub.hub_mixin as hub_mixin

    seen: dict = {}

    class FakeApi:
        def __init__(self, token=None) -> None:
            seen["token"] = token

        def create_repo(self, repo_id: str, private=None, exist_ok=False):
            return type("Url", (), {"repo_id": repo_id})()

        def upload_folder(self, *, repo_id, folder_path, **kwargs):
            folder = Path(folder_path)
            seen["files"] = sorted(p.name for p in folder.iterdir())
            seen["card"] = (folder / "README.md").read_text()
            seen["config"] = json.loads((folder / "config.json").read_text())
            return f"https://huggingface.co/{repo_id}/commit/0"

    monkeypatch.setattr(hub_mixin, "HfApi", FakeApi)
    model = create_model("nalsuper_t", dim=8, depth=1)
    url = model.push_to_hub("someone/tiny", token="t", model_card_kwargs={"metrics": {"psnr": 1.5}})
    assert url.endswith("/commit/0") and seen["token"] == "t"
    assert seen["files"] == ["README.md", "config.json", "model.safetensors"]
    assert 'from_pretrained("someone/tiny")' in seen["card"] and "| psnr | 1.5000 |" in seen["card"]
    assert seen["config"]["architecture"] == "NaLSuper"


# -- repo ids without a reachable Hub ---------------------------------------------------------
_LOAD = textwrap.dedent(
    """
    import sys, time, textrestore
    t = time.perf_counter()
    try:
        textrestore.from_pretrained(sys.argv[1])
    except Exception as err:
        print(f"{time.perf_counter() - t:.3f}")
        print(type(err).__name__)
        print(err)
    else:
        print(f"{time.perf_counter() - t:.3f}"); print("loaded")
    """
)


def _load_in_subprocess(repo: str, env: dict[str, str]) -> tuple[float, str, str]:
    full = {**os.environ, **env}
    out = subprocess.run(
        [sys.executable, "-c", _LOAD, repo], capture_output=True, text=True, env=full,
        timeout=120, check=True,
    ).stdout.splitlines()  # fmt: skip
    return float(out[0]), out[1], "\n".join(out[2:])


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers (a black-holed Hub)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    for c in conns:
        c.close()
    sock.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("mode", ["HF_HUB_OFFLINE", "refused", "silent"])
def test_repo_id_offline_fails_fast(mode: str, tmp_path: Path, request) -> None:
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0"}
    if mode == "HF_HUB_OFFLINE":
        env["HF_HUB_OFFLINE"] = "1"
    elif mode == "refused":
        env["HF_ENDPOINT"] = f"http://127.0.0.1:{_closed_port()}"
    else:
        env["HF_ENDPOINT"] = f"http://127.0.0.1:{request.getfixturevalue('silent_server')}"
    seconds, kind, message = _load_in_subprocess("someone/some-model", env)
    assert kind == "HubUnavailableError", message
    assert seconds < 5.0, seconds
    assert "local folder" in message and "cache" in message and "someone/some-model" in message
    assert issubclass(HubUnavailableError, ConnectionError)


def test_repo_id_loads_from_a_populated_cache_offline(tmp_path: Path) -> None:
    """The message's advice works: a cache filled elsewhere loads with HF_HUB_OFFLINE=1."""
    model = _perturbed(create_model("nalsuper_t", dim=8, depth=1))
    repo = tmp_path / "hf" / "hub" / "models--someone--tiny"
    commit = "0123456789abcdef0123456789abcdef01234567"
    model.save_pretrained(repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    seconds, kind, message = _load_in_subprocess(
        "someone/tiny", {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    )
    assert kind == "loaded", message

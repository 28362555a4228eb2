"""Weights shipped inside the wheel (``textrestore/weights/<preset>.safetensors``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from torch import nn

__all__ = [
    "pretrained_path",
    "list_pretrained",
    "load_pretrained",
    "load_weights",
    "model_from_checkpoint",
]


def _weights_dir() -> Path:
    return Path(str(resources.files("textrestore"))) / "weights"


def list_pretrained() -> list[str]:
    """Names of the presets whose weights ship with the package."""
    folder = _weights_dir()
    return sorted(p.stem for p in folder.glob("*.safetensors")) if folder.is_dir() else []


def pretrained_path(name: str) -> Path:
    """Path of the shipped weights of preset ``name``; ``ValueError`` if none ship."""
    path = _weights_dir() / f"{name}.safetensors"
    if not path.is_file():
        shipped = ", ".join(list_pretrained()) or "none"
        raise ValueError(f"no pretrained weights ship for {name!r}; shipped: {shipped}")
    return path


def load_weights(model: nn.Module, path: str | Path, strict: bool = True) -> nn.Module:
    """Load a ``.safetensors`` file (or a ``torch.save``d state dict, read with
    ``weights_only=True``) into ``model``; a leading ``module.`` (DDP) is stripped."""
    import torch
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        state = load_file(str(path))
    else:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
        state = loaded.get("model", loaded) if isinstance(loaded, dict) else loaded
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model.load_state_dict(state, strict=strict)
    return model


def load_pretrained(model: nn.Module, name: str) -> nn.Module:
    """Load the weights shipped for preset ``name`` into ``model``."""
    return load_weights(model, pretrained_path(name))


def _safetensors_preset(path: Path) -> str | None:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return (f.metadata() or {}).get("preset")


def model_from_checkpoint(
    path: str | Path,
    preset: str | None = None,
    use_ema: bool = True,
    default_preset: str | None = None,
) -> nn.Module:
    """Build the model that a weights file describes and load its weights.

    Understands three kinds of file:

    - ``.safetensors`` (shipped weights, exports of the trainer's best model): the preset
      is ``preset``, else the file's ``preset`` metadata, else ``default_preset``;
    - a trainer checkpoint (``.pt`` holding ``config`` and ``model``): preset and
      constructor overrides come from its config (``preset`` overrides the name); with
      ``use_ema`` its EMA weights are used when present;
    - a bare state dict (``.pt``/``.pth``/``.bin``, read with ``weights_only=True``): needs
      ``preset`` or ``default_preset``.

    Args:
        path: the weights file.
        preset: the preset to build, overriding what the file says.
        use_ema: prefer a trainer checkpoint's EMA weights.
        default_preset: the preset when neither ``preset`` nor the file names one.

    Returns:
        The model with its weights loaded (in training mode, as ``create_model`` returns it).
    """
    import torch

    from .registry import create_model

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        name = preset or _safetensors_preset(path) or default_preset
        if name is None:
            raise ValueError(f"{path}: the file names no preset; pass preset=")
        return load_weights(create_model(name), path)
    loaded: Any = torch.load(path, map_location="cpu", weights_only=True)
    config = loaded.get("config") if isinstance(loaded, dict) else None
    if isinstance(config, dict) and isinstance(loaded.get("model"), dict):
        model = create_model(preset or config["model"], **config.get("model_args", {}))
        state = loaded["model"]
        if use_ema and isinstance(loaded.get("ema"), dict):
            state = {k: v for k, v in loaded["ema"].items() if k != "n_averaged"}
        model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
        return model
    name = preset or default_preset
    if name is None:
        raise ValueError(f"{path}: not a trainer checkpoint and no preset given; pass preset=")
    return load_weights(create_model(name), path)

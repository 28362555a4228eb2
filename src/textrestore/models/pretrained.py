"""Weights shipped inside the wheel (``textrestore/weights/<preset>.safetensors``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from torch import nn

__all__ = [
    "WeightsFileError",
    "pretrained_path",
    "list_pretrained",
    "load_pretrained",
    "load_weights",
    "model_from_checkpoint",
]


class WeightsFileError(ValueError):
    """A weights file that cannot be read or does not fit the model (one-line message)."""


_FILE_KINDS = (
    "expected a .safetensors file or a torch.save'd state dict / trainer checkpoint (.pt) "
    "written by textrestore"
)


def _short(err: BaseException, limit: int = 160) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.stat().st_size == 0:
        raise WeightsFileError(f"{path}: the weights file is empty (0 bytes); {_FILE_KINDS}")


def _read_safetensors(path: Path) -> dict[str, Any]:
    """``safetensors.torch.load_file`` with a one-line error for a bad file."""
    from safetensors.torch import load_file

    _check_file(path)
    try:
        return load_file(str(path))
    except Exception as err:  # SafetensorError: fake, truncated or foreign file
        raise WeightsFileError(
            f"{path}: not a readable safetensors file ({_short(err)}); {_FILE_KINDS}"
        ) from None


def _torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with a one-line error for a bad file.

    Text, empty, truncated or foreign files and pickles of arbitrary Python objects are
    refused with a message that says what was expected; such files are never loaded
    with ``weights_only=False``.
    """
    import pickle
    import warnings

    import torch

    _check_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pickle-protocol notes of the safe unpickler
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        reason = (
            "it is not a tensor archive, or it holds Python objects besides tensors and plain "
            "containers, which textrestore never unpickles"
        )
    except (EOFError, RuntimeError, KeyError, ValueError, OSError, IndexError):
        with open(path, "rb") as fh:
            zipped = fh.read(4) == b"PK\x03\x04"
        reason = (
            "a truncated or damaged torch.save archive" if zipped else "not a torch.save archive"
        )
    raise WeightsFileError(f"{path}: not a readable PyTorch weights file ({reason}); {_FILE_KINDS}")


def _load_state(model: nn.Module, state: Any, path: Path, strict: bool = True) -> nn.Module:
    """``model.load_state_dict`` with a one-line error when the weights do not fit."""
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise WeightsFileError(
            f"{path}: expected a state dict (names -> tensors), got {type(state).__name__}"
        )
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=strict)
    except (RuntimeError, TypeError, ValueError, KeyError, AttributeError) as err:
        preset = getattr(model, "config", {}).get("preset") if hasattr(model, "config") else None
        name = preset or type(model).__name__
        raise WeightsFileError(
            f"{path}: the weights do not fit the model {name} ({_short(err, 200)}); pass the "
            "preset they were trained with (--model / preset=)"
        ) from None
    return model


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
    path = Path(path)
    if path.suffix == ".safetensors":
        state: Any = _read_safetensors(path)
    else:
        loaded = _torch_load(path)
        state = loaded.get("model", loaded) if isinstance(loaded, dict) else loaded
    return _load_state(model, state, path, strict)


def load_pretrained(model: nn.Module, name: str) -> nn.Module:
    """Load the weights shipped for preset ``name`` into ``model``."""
    return load_weights(model, pretrained_path(name))


def _safetensors_metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as err:  # SafetensorError: fake, truncated or foreign file
        raise WeightsFileError(
            f"{path}: not a readable safetensors file ({_short(err)}); {_FILE_KINDS}"
        ) from None


def _safetensors_preset(path: Path) -> str | None:
    return _safetensors_metadata(path).get("preset")


def _safetensors_config(path: Path) -> dict[str, Any]:
    """The constructor arguments a safetensors file records (metadata ``config``, JSON)."""
    import json

    raw = _safetensors_metadata(path).get("config")
    if not raw:
        return {}
    try:
        config = json.loads(raw)
    except ValueError:
        raise WeightsFileError(f"{path}: its 'config' metadata is not JSON") from None
    return config if isinstance(config, dict) else {}


def model_from_checkpoint(
    path: str | Path,
    preset: str | None = None,
    use_ema: bool = True,
    default_preset: str | None = None,
) -> nn.Module:
    """Build the model that a weights file describes and load its weights.

    Understands three kinds of file:

    - ``.safetensors`` (shipped weights, exports of the trainer's best model): the preset
      is ``preset``, else the file's ``preset`` metadata, else ``default_preset``; the
      constructor arguments the file records (metadata ``config``, as timm's and
      open_clip's pretrained configs do) are passed on, so a model trained with overrides
      loads without the user repeating them;
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
    from .registry import create_model

    path = Path(path)
    _check_file(path)
    if path.suffix == ".safetensors":
        file_preset = _safetensors_preset(path)
        name = preset or file_preset or default_preset
        if name is None:
            raise ValueError(f"{path}: the file names no preset; pass preset=")
        args = _safetensors_config(path) if name == file_preset else {}
        return _load_state(create_model(name, **args), _read_safetensors(path), path)
    loaded: Any = _torch_load(path)
    config = loaded.get("config") if isinstance(loaded, dict) else None
    if isinstance(config, dict) and isinstance(loaded.get("model"), dict):
        name = preset or config.get("model")
        args = config.get("model_args") or {}
        if not isinstance(name, str) or not isinstance(args, dict):
            raise WeightsFileError(
                f"{path}: a trainer checkpoint whose config names no model preset; pass preset="
            )
        model = create_model(name, **args)
        state = loaded["model"]
        if use_ema and isinstance(loaded.get("ema"), dict):
            state = {k: v for k, v in loaded["ema"].items() if k != "n_averaged"}
        return _load_state(model, state, path)
    name = preset or default_preset
    if name is None:
        raise ValueError(f"{path}: not a trainer checkpoint and no preset given; pass preset=")
    state = loaded.get("model", loaded) if isinstance(loaded, dict) else loaded
    return _load_state(create_model(name), state, path)

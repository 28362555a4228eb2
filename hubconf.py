"""torch.hub entry points: one per textrestore preset.

Example::

    import torch
    model = torch.hub.load("<repo or folder>", "nalsuper_s", pretrained=True)  # shipped weights
    model = torch.hub.load("<repo or folder>", "nalsuper_ms", dim=...)           # random init
    model = torch.hub.load("<repo or folder>", "from_pretrained", "path/or/user-repo")

Every preset of :func:`textrestore.list_models` is an entry point taking ``pretrained``
(load the weights shipped in ``src/textrestore/weights/``) and constructor overrides.
The repository's own ``src/`` is used, so no ``pip install`` is needed.
"""

import os as _os
import sys as _sys

dependencies = ["torch", "torchvision", "einops", "timm", "safetensors", "huggingface_hub", "yaml"]

_SRC = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "src")
if _os.path.isdir(_os.path.join(_SRC, "textrestore")) and _SRC not in _sys.path:
    _sys.path.insert(0, _SRC)

import textrestore as _textrestore  # noqa: E402
from textrestore.models.registry import _MODELS as _PRESETS  # noqa: E402


def _entry(name):
    preset = _PRESETS[name]

    def entry(pretrained=False, **overrides):
        return _textrestore.create_model(name, pretrained=pretrained, **overrides)

    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = (
        f"{(preset.__doc__ or name).strip()}\n\n"
        f"Args:\n    pretrained: load the weights shipped for {name!r} "
        f"(available: {', '.join(_textrestore.models.list_pretrained()) or 'none'}).\n"
        f"    **overrides: constructor arguments replacing the preset's."
    )
    return entry


for _name in _textrestore.list_models():
    globals()[_name] = _entry(_name)


def from_pretrained(name_or_path, **kwargs):
    """A model saved with ``save_pretrained``: a local folder or a Hugging Face Hub repo id."""
    return _textrestore.from_pretrained(name_or_path, **kwargs)

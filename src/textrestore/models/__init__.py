"""Model registry and the NaLSuper presets."""

from .nalsuper import NaLSuper, nalsuper, nalsuper_s, nalsuper_t
from .pretrained import list_pretrained, load_pretrained, load_weights, model_from_checkpoint
from .registry import create_model, is_model, list_models, register_model

__all__ = [
    "NaLSuper",
    "nalsuper",
    "nalsuper_s",
    "nalsuper_t",
    "create_model",
    "list_models",
    "register_model",
    "is_model",
    "list_pretrained",
    "load_pretrained",
    "load_weights",
    "model_from_checkpoint",
]

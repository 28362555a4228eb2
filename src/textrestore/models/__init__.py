"""Model registry and the NaLSuper presets."""

from .base import TextGuidedModel
from .hub import HubUnavailableError, convert_checkpoint, from_pretrained
from .multiscale import MultiScaleNaLSuper, RTFBStage, nalsuper_ms
from .nalsuper import NaLSuper, nalsuper, nalsuper_s, nalsuper_t
from .pretrained import list_pretrained, load_pretrained, load_weights, model_from_checkpoint
from .registry import create_model, is_model, list_models, register_model

__all__ = [
    "NaLSuper",
    "nalsuper",
    "nalsuper_s",
    "nalsuper_t",
    "nalsuper_ms",
    "MultiScaleNaLSuper",
    "RTFBStage",
    "TextGuidedModel",
    "create_model",
    "list_models",
    "register_model",
    "is_model",
    "list_pretrained",
    "load_pretrained",
    "load_weights",
    "model_from_checkpoint",
    "from_pretrained",
    "convert_checkpoint",
    "HubUnavailableError",
]

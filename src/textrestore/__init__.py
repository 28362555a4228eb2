"""textrestore: text-guided image restoration modules for PyTorch.

The first network is NaLSuper (arXiv 2501.06546): low-light enhancement whose image
features attend to the words of a text prompt through a frozen text encoder. Every
part is a composable ``nn.Module``.

Example:
    >>> import torch
    >>> from textrestore import TCM
    >>> TCM(dim=16, text_dim=8, num_heads=2)(torch.rand(1, 16, 4, 4), torch.randn(3, 8)).shape
    torch.Size([1, 16, 4, 4])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_namespace
from ._version import __version__

# Public names and the submodule each lives in. They are imported on first use (PEP 562),
# so that ``import textrestore`` and ``textrestore --help`` do not import torch.
_LAZY: dict[str, str] = {
    "enhance": ".inference",
    "IFA": ".layers",
    "RTFB": ".layers",
    "TCM": ".layers",
    "ChannelAttention": ".layers",
    "CrossLayerAttention": ".layers",
    "PixelAttention": ".layers",
    "NaLSuper": ".models",
    "create_model": ".models",
    "from_pretrained": ".models",
    "list_models": ".models",
    "register_model": ".models",
    "TextEmbedding": ".text",
}

if TYPE_CHECKING:
    from .inference import enhance
    from .layers import IFA, RTFB, TCM, ChannelAttention, CrossLayerAttention, PixelAttention
    from .models import NaLSuper, create_model, from_pretrained, list_models, register_model
    from .text import TextEmbedding


__getattr__, __dir__ = lazy_namespace(__name__, _LAZY, globals())


__all__ = [
    "__version__",
    "TCM",
    "IFA",
    "RTFB",
    "ChannelAttention",
    "PixelAttention",
    "CrossLayerAttention",
    "NaLSuper",
    "create_model",
    "from_pretrained",
    "list_models",
    "register_model",
    "TextEmbedding",
    "enhance",
]

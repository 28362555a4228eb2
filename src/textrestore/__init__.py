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

from ._version import __version__
from .inference import enhance
from .layers import (
    IFA,
    RTFB,
    TCM,
    ChannelAttention,
    CrossLayerAttention,
    PixelAttention,
)
from .models import NaLSuper, create_model, from_pretrained, list_models, register_model
from .text import TextEmbedding

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

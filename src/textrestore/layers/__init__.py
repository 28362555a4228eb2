"""Building blocks of NaLSuper, each usable alone in other networks."""

from .attention import ChannelAttention, CrossLayerAttention, PixelAttention
from .ifa import IFA
from .rtfb import RTFB
from .statistics import GlobalStatistics
from .tcm import TCM, text_attention, text_attention_reference

__all__ = [
    "TCM",
    "IFA",
    "RTFB",
    "ChannelAttention",
    "PixelAttention",
    "CrossLayerAttention",
    "GlobalStatistics",
    "text_attention",
    "text_attention_reference",
]

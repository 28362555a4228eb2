"""Whole-image statistics for tiled inference, passed in a context, never stored on modules.

A tile sees only part of the image, but two layers of NaLSuper summarise the whole of it:
:class:`~textrestore.layers.ChannelAttention` (a gate from globally pooled features) and
:class:`~textrestore.layers.CrossLayerAttention` (an affinity between whole levels).
:class:`GlobalStatistics` carries those summaries from a context pass over the image to the
tiled pass: inside :meth:`GlobalStatistics.recording` every such layer stores what it
computes; inside :meth:`GlobalStatistics.applied` it uses the stored value instead of its
own. The active statistics live in a :class:`contextvars.ContextVar`, so two threads (or
two asyncio tasks) tiling different images with one shared model never see each other's
statistics, and a module holds no state between calls.

Example:
    >>> import torch
    >>> from textrestore.layers import ChannelAttention
    >>> ca = ChannelAttention(8).eval()
    >>> whole, tile = torch.rand(1, 8, 32, 32), torch.rand(1, 8, 8, 8)
    >>> stats = GlobalStatistics()
    >>> with stats.recording():
    ...     _ = ca(whole)
    >>> with stats.applied():
    ...     fixed = ca(tile)
    >>> torch.allclose(fixed, tile * ca.gate_values(whole))
    True
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch
from torch import Tensor, nn

__all__ = ["GlobalStatistics", "fixed_statistic", "record_statistic"]


class GlobalStatistics:
    """The global statistics of one image, keyed by the module that computed each.

    Use :meth:`recording` around a forward of the whole (or downscaled) image, then
    :meth:`applied` around the forwards of its tiles. The object is local to one call;
    nothing is written to the modules.
    """

    def __init__(self) -> None:
        self._values: dict[nn.Module, Tensor] = {}

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, module: nn.Module) -> bool:
        return module in self._values

    def get(self, module: nn.Module) -> Tensor | None:
        """The statistic ``module`` recorded, or None."""
        return self._values.get(module)

    @contextlib.contextmanager
    def recording(self) -> Iterator[GlobalStatistics]:
        """Within the block, layers with a global statistic store it here (detached)."""
        self._values.clear()
        token = _ACTIVE.set((self, True))
        try:
            yield self
        finally:
            _ACTIVE.reset(token)

    @contextlib.contextmanager
    def applied(self) -> Iterator[GlobalStatistics]:
        """Within the block, layers use the statistic stored here instead of their own."""
        token = _ACTIVE.set((self, False))
        try:
            yield self
        finally:
            _ACTIVE.reset(token)


#: (statistics, recording?) of the current context; None outside any block.
_ACTIVE: contextvars.ContextVar[tuple[GlobalStatistics, bool] | None] = contextvars.ContextVar(
    "textrestore_global_statistics", default=None
)


def _active() -> tuple[GlobalStatistics, bool] | None:
    if torch.compiler.is_compiling():  # compiled graphs never tile
        return None
    return _ACTIVE.get()


def fixed_statistic(module: nn.Module) -> Tensor | None:
    """The statistic to use for ``module`` instead of its own (inside ``applied``), or None."""
    active = _active()
    if active is None or active[1]:
        return None
    return active[0].get(module)


def record_statistic(module: nn.Module, value: Tensor) -> None:
    """Store ``module``'s statistic ``value`` when a ``recording`` block is active."""
    active = _active()
    if active is not None and active[1]:
        active[0]._values[module] = value.detach()

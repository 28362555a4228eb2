"""The one eligibility predicate of the inference fast branches.

Each module that has a memory-lean branch (in-place intermediates, chunked attention,
NaLSuper's level buffer) takes it inside its own ``forward`` only when
:func:`inference_fast_path` holds for it and its input, the way timm's ``fused_attn``
switches attention kernels: no autograd, no tracing/compiling/exporting, a real device, a
floating dtype, no autocast (its per-op casts and the in-place updates do not mix), and no
forward hooks on the module or its children (so attention capture and any user hook see
every call). Each module adds its own type checks of the children it calls into (a user's
replacement or subclass always runs through its own ``forward``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import is_tracing

__all__ = ["inference_fast_path", "has_forward_hooks"]

_FAST_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def has_forward_hooks(module: nn.Module) -> bool:
    """True if a forward (pre-)hook is registered on ``module``, a child, or globally."""
    from torch.nn.modules import module as module_mod

    if module_mod._global_forward_hooks or module_mod._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())


def inference_fast_path(module: nn.Module, x: Tensor) -> bool:
    """Whether ``module`` may take its memory-lean inference branch for input ``x``.

    Example:
        >>> import torch
        >>> m, x = torch.nn.Identity(), torch.rand(1, 3, 4, 4)
        >>> inference_fast_path(m, x)
        False
        >>> with torch.no_grad():
        ...     inference_fast_path(m, x)
        True
    """
    return (
        not torch.is_grad_enabled()
        and not is_tracing()
        and x.device.type != "meta"
        and x.dtype in _FAST_DTYPES
        and not torch.is_autocast_enabled(x.device.type)
        and not has_forward_hooks(module)
    )

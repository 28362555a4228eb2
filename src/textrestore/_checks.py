"""Small named input checks shared by the public modules.

Each check raises ``TypeError`` (wrong kind of object or dtype) or ``ValueError``
(wrong shape or value) with a message that says what was expected and what came.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "check_tensor",
    "check_floating",
    "check_image_batch",
    "check_same_batch",
    "is_tracing",
]


def is_tracing() -> bool:
    """True under torch.compile, torch.export or TorchScript, where value checks must not run."""
    exporting = getattr(torch.compiler, "is_exporting", lambda: False)
    return bool(
        torch.compiler.is_compiling()
        or exporting()
        or torch.jit.is_tracing()
        or torch.jit.is_scripting()
    )


def _describe(x: object) -> str:
    if isinstance(x, Tensor):
        return f"tensor of shape {tuple(x.shape)} and dtype {x.dtype}"
    return f"object of type {type(x).__name__}"


def check_tensor(x: object, name: str) -> Tensor:
    """Raise ``TypeError`` unless ``x`` is a ``torch.Tensor``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {_describe(x)}")
    return x


def check_floating(x: Tensor, name: str) -> Tensor:
    """Raise ``TypeError`` unless ``x`` has a floating-point dtype."""
    if not torch.is_floating_point(x):
        raise TypeError(
            f"{name}: expected a floating-point tensor (float32, float16, bfloat16 or "
            f"float64), got dtype {x.dtype}; convert with x.float() (and divide by 255 "
            f"for 8-bit images)"
        )
    return x


def check_image_batch(x: object, name: str, channels: int | None = None) -> Tensor:
    """Check a (B, C, H, W) floating-point tensor, optionally with ``channels`` channels."""
    t = check_floating(check_tensor(x, name), name)
    if t.ndim != 4:
        expected = f"(B, {channels}, H, W)" if channels is not None else "(B, C, H, W)"
        raise ValueError(f"{name}: expected a 4-D tensor {expected}, got shape {tuple(t.shape)}")
    if channels is not None and t.shape[1] != channels:
        raise ValueError(
            f"{name}: expected {channels} channels in (B, {channels}, H, W), "
            f"got shape {tuple(t.shape)}"
        )
    if min(t.shape) < 1:
        raise ValueError(f"{name}: every dimension must be >= 1, got shape {tuple(t.shape)}")
    return t


def check_same_batch(tensors: Sequence[Tensor], names: Sequence[str]) -> None:
    """Raise ``ValueError`` unless all tensors share their first (batch) dimension."""
    sizes = [t.shape[0] for t in tensors]
    if len(set(sizes)) > 1:
        listed = ", ".join(f"{n}={s}" for n, s in zip(names, sizes))
        raise ValueError(f"batch sizes differ: {listed}")

"""Atomic checkpoints and RNG state capture that load with ``torch.load(weights_only=True)``.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so loading it
never unpickles arbitrary objects. It is written to a temporary file in the target's
folder, flushed and ``fsync``-ed, renamed over the target with ``os.replace`` (atomic on
POSIX and Windows), and the folder is ``fsync``-ed, so a crash at any moment leaves
either the previous checkpoint or the new one, never a torn file.

Example:
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = save_checkpoint({"step": 3, "w": torch.ones(2)}, d / "last.pt")
    >>> load_checkpoint(d / "last.pt")["step"]
    3
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._atomic import atomic_path, atomic_write_bytes, fsync_dir

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "atomic_write_bytes",
    "capture_rng_state",
    "restore_rng_state",
    "fsync_dir",
]


def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Save ``state`` with ``torch.save`` atomically and durably (``fsync``-ed).

    Args:
        state: a dict of tensors and plain Python values (what ``weights_only`` loads).
        path: target file; its folder is created if needed.

    Returns:
        The path written.
    """
    with atomic_path(path, durable=True) as tmp:
        torch.save(dict(state), tmp)
    return Path(path)


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a checkpoint dict (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError(f"cannot read checkpoint {path}: {err}") from err
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path}: expected a dict, got {type(state).__name__}")
    return state


def capture_rng_state() -> dict[str, Any]:
    """RNG states of torch (CPU and every CUDA device), numpy and ``random`` as tensors.

    Example:
        >>> s = capture_rng_state(); a = torch.rand(1); restore_rng_state(s)
        >>> torch.equal(a, torch.rand(1))
        True
    """
    np_state: Any = np.random.get_state()
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64).copy()),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {
            "version": int(py_state[0]),
            "state": torch.tensor(py_state[1], dtype=torch.int64),
            "gauss_next": py_state[2],
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`capture_rng_state` returned."""
    torch.set_rng_state(state["torch"].cpu())
    np_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np_state["keys"].numpy().astype(np.uint32),
            int(np_state["pos"]),
            int(np_state["has_gauss"]),
            float(np_state["cached_gaussian"]),
        )
    )
    py = state["python"]
    random.setstate(
        (int(py["version"]), tuple(int(v) for v in py["state"].tolist()), py["gauss_next"])
    )
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        n = min(len(cuda), torch.cuda.device_count())
        torch.cuda.set_rng_state_all([t.cpu() for t in cuda[:n]])

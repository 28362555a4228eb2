"""Training: :class:`TrainConfig`, :class:`Trainer`, atomic checkpoints, ``torchrun`` glue.

``textrestore train --config cfg.yaml [key=value ...]`` runs a :class:`Trainer`; the same
command under ``torchrun --nproc_per_node=N`` trains with ``DistributedDataParallel``.
See ``examples/configs/`` for LOL-v1, LOL-v2 and an offline synthetic config.
"""

from __future__ import annotations

from .checkpoint import (
    atomic_write_bytes,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from .config import AMP_MODES, DataConfig, TrainConfig, apply_overrides, parse_overrides
from .distributed import (
    DistInfo,
    ResumableDistributedSampler,
    barrier,
    cleanup_distributed,
    init_distributed,
    unwrap,
    wrap_ddp,
)
from .trainer import NonFiniteLossError, Trainer, build_scheduler, freeze_all_but

__all__ = [
    "TrainConfig",
    "DataConfig",
    "AMP_MODES",
    "parse_overrides",
    "apply_overrides",
    "Trainer",
    "NonFiniteLossError",
    "build_scheduler",
    "freeze_all_but",
    "save_checkpoint",
    "load_checkpoint",
    "atomic_write_bytes",
    "capture_rng_state",
    "restore_rng_state",
    "DistInfo",
    "init_distributed",
    "cleanup_distributed",
    "barrier",
    "wrap_ddp",
    "unwrap",
    "ResumableDistributedSampler",
]

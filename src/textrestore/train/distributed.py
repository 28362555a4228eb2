"""``torch.distributed`` glue for ``torchrun``: process group, ranks, DDP, a resumable sampler.

Everything reads the environment that ``torchrun`` sets (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); there is no ``--local-rank`` argument.
With ``WORLD_SIZE`` unset or 1 nothing is initialised and the same code runs on one process.

Example:
    >>> info = DistInfo.from_env({})
    >>> info.world_size, info.rank, info.is_main, info.enabled
    (1, 0, True, False)
    >>> s = ResumableDistributedSampler(list(range(10)), num_replicas=1, rank=0, seed=0)
    >>> s.set_epoch(0); full = list(s); s.set_start(4)
    >>> list(s) == full[4:]
    True
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sized
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler

__all__ = [
    "DistInfo",
    "init_distributed",
    "cleanup_distributed",
    "barrier",
    "wrap_ddp",
    "unwrap",
    "all_reduce_max",
    "ResumableDistributedSampler",
]


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job (``world_size=1`` when not distributed)."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the process that logs, validates and checkpoints)."""
        return self.rank == 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DistInfo:
        """Read ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` (as set by ``torchrun``)."""
        env = os.environ if env is None else env

        def read(key: str, default: int) -> int:
            raw = env.get(key)
            if raw is None or raw == "":
                return default
            try:
                return int(raw)
            except ValueError:
                raise ValueError(f"environment {key}: expected an int, got {raw!r}") from None

        world = read("WORLD_SIZE", 1)
        rank = read("RANK", 0)
        local = read("LOCAL_RANK", rank)
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"environment: expected 0 <= RANK < WORLD_SIZE, got {rank}, {world}")
        return cls(world, rank, local)


def init_distributed(device: str = "auto") -> tuple[DistInfo, torch.device]:
    """Initialise the process group when ``WORLD_SIZE > 1`` and pick this process's device.

    Args:
        device: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
            Under DDP on CUDA each process uses ``cuda:LOCAL_RANK``.

    Returns:
        ``(info, device)``. The backend is NCCL on CUDA and Gloo on CPU.
    """
    info = DistInfo.from_env()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available")
        if dev.index is None:
            dev = torch.device("cuda", info.local_rank if info.enabled else 0)
        torch.cuda.set_device(dev)
    if info.enabled and not (dist.is_available() and dist.is_initialized()):
        if not dist.is_available():  # pragma: no cover
            raise RuntimeError("WORLD_SIZE > 1 but torch.distributed is not available")
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(
            backend=backend,
            rank=info.rank,
            world_size=info.world_size,
            device_id=dev if dev.type == "cuda" else None,
        )
    return info, dev


def cleanup_distributed() -> None:
    """Destroy the process group if one is initialised."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """``dist.barrier()`` when distributed, else nothing."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_max(value: float, device: torch.device) -> float:
    """Max of ``value`` over all processes (``value`` itself on one process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def wrap_ddp(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """Wrap in ``DistributedDataParallel`` when distributed, else return ``model``.

    Buffers (the prompt bank's embeddings) are not broadcast at every forward: every
    rank encodes the same prompts before wrapping.
    """
    if not info.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP (or ``torch.compile``) wrapper."""
    inner = getattr(model, "module", None)
    if isinstance(model, nn.parallel.DistributedDataParallel) and isinstance(inner, nn.Module):
        return unwrap(inner)
    orig = getattr(model, "_orig_mod", None)
    return unwrap(orig) if isinstance(orig, nn.Module) else model


class ResumableDistributedSampler(DistributedSampler):  # type: ignore[type-arg]
    """``DistributedSampler`` that can start part-way through an epoch.

    The order of epoch ``e`` is a permutation seeded by ``seed + e`` (as in
    ``DistributedSampler``), split over ranks; :meth:`set_start` skips the first ``n``
    indices of this rank's share without loading them, which is how a resumed run
    continues exactly where the killed one stopped.
    """

    def __init__(
        self,
        dataset: Sized,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
    ) -> None:
        super().__init__(
            dataset,  # type: ignore[arg-type]
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` indices of this rank's share of the current epoch."""
        if start < 0:
            raise ValueError(f"ResumableDistributedSampler.set_start: expected >= 0, got {start}")
        self.start = int(start)

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.start :])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.start)

"""The :class:`Trainer`: AdamW + warm-up/cosine, AMP, EMA, validation, exact resume, DDP.

Exact resume: every source of randomness in a step is derived from ``(seed, epoch,
step)``: the sampler order of epoch ``e`` is seeded by ``seed + e``, the dataset's
augmentation by ``dataset.set_epoch(e)`` and its index, and the global torch RNG is
re-seeded from ``(seed, step)`` before every step. A checkpoint stores the step, the
epoch and the number of batches already consumed in it; a resumed run skips those
batches in the sampler (without loading them) and continues. On CPU with
``deterministic: true`` the final weights equal those of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset, default_collate

from .._atomic import atomic_write_text
from .checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from .config import TrainConfig
from .distributed import (
    ResumableDistributedSampler,
    all_reduce_max,
    barrier,
    init_distributed,
    unwrap,
    wrap_ddp,
)

__all__ = [
    "Trainer", "NonFiniteLossError", "build_scheduler", "freeze_all_but", "CHECKPOINT_VERSION",
]  # fmt: skip

#: Format version stored in every checkpoint.
CHECKPOINT_VERSION = 1


class NonFiniteLossError(RuntimeError):
    """Raised after ``max_nonfinite`` consecutive steps with a non-finite loss or gradient."""


def build_scheduler(
    optimizer: torch.optim.Optimizer, steps: int, warmup: int, min_lr: float
) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warm-up (``lr·(s+1)/warmup`` for ``s < warmup``) then cosine decay to ``min_lr``.

    Example:
        >>> p = torch.nn.Parameter(torch.zeros(1))
        >>> opt = torch.optim.AdamW([p], lr=1.0)
        >>> sched = build_scheduler(opt, steps=10, warmup=2, min_lr=0.0)
        >>> lrs = []
        >>> for _ in range(4):
        ...     lrs.append(round(opt.param_groups[0]["lr"], 4)); opt.step(); sched.step()
        >>> lrs
        [0.5, 1.0, 1.0, 0.9619]
    """
    lr_sched = torch.optim.lr_scheduler
    base = max(g["lr"] for g in optimizer.param_groups)
    # CosineAnnealingLR's eta_min is absolute; a min_lr above the peak would be a bug.
    eta_min = min(min_lr, base)
    cosine = lr_sched.CosineAnnealingLR(optimizer, T_max=max(1, steps - warmup), eta_min=eta_min)
    if warmup <= 1:
        return cosine
    linear = lr_sched.LinearLR(
        optimizer, start_factor=1.0 / warmup, end_factor=1.0, total_iters=warmup - 1
    )
    return lr_sched.SequentialLR(optimizer, [linear, cosine], milestones=[warmup])


def freeze_all_but(model: nn.Module, patterns: list[str]) -> list[str]:
    """Train only the parameters whose names match one of ``patterns``; freeze the rest.

    Sets ``requires_grad`` of every parameter of ``model``: True where its name (as in
    ``model.named_parameters()``) matches a pattern (``fnmatch.fnmatchcase``), else
    False. Used by :class:`Trainer` for :attr:`TrainConfig.trainable`.

    Args:
        model: the module whose parameters are set.
        patterns: glob patterns of parameter names, e.g. ``["*.tcm.k.*"]``.

    Returns:
        The names of the parameters left trainable, in ``named_parameters()`` order.

    Raises:
        ValueError: a pattern matches no parameter (the message names a few that exist).

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
        >>> freeze_all_but(net, ["1.*"])
        ['1.weight', '1.bias']
        >>> net[0].weight.requires_grad
        False
    """
    import fnmatch

    names = [name for name, _ in model.named_parameters()]
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
            shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
            raise ValueError(
                f"config trainable: pattern {pattern!r} matches no parameter of the model; "
                f"its parameters are named like: {shown}"
            )
    kept: list[str] = []
    for name, param in model.named_parameters():
        train = any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
        param.requires_grad_(train)
        if train:
            kept.append(name)
    return kept


def _step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step * 7_919 + 12_345) % (2**63 - 1)


def _is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # pragma: no cover
        return False


class Trainer:
    """Train a restoration model from a :class:`TrainConfig`.

    Args:
        cfg: the configuration.
        model: a ready model (None: ``create_model(cfg.model, **cfg.model_args)``). It is
            called as ``model(low, prompts)`` with ``prompts`` a list of str (per-sample
            prompts of the batch, else ``cfg.data.prompt``) or None (its default prompt).
        train_set: a dataset yielding ``{"low", "high", "name", ["prompt"]}`` dicts with
            ``len`` and optionally ``set_epoch(e)`` (None: built from ``cfg.data`` with
            :func:`textrestore.data.build_dataset`).
        val_set: validation dataset of the same kind (None: built from ``cfg.data`` when
            ``cfg.val_every > 0``; pass ``False`` for none).
        callbacks: functions ``fn(trainer)`` called after every optimiser step (after the
            checkpoint of that step is written).

    Files in ``cfg.out_dir`` (rank 0): ``config.yaml``, ``log.jsonl`` (one line per step,
    and one per validation), ``last.pt``, ``best.pt`` (highest validation PSNR),
    ``summary.json``; with ``logger: tensorboard``, event files in ``tensorboard/``
    (``tensorboard --logdir <out_dir>/tensorboard``).

    Example:
        >>> import torch, tempfile
        >>> from textrestore.train import Trainer, TrainConfig
        >>> class Pairs(torch.utils.data.Dataset):
        ...     def __len__(self): return 8
        ...     def __getitem__(self, i):
        ...         g = torch.Generator().manual_seed(i); hi = torch.rand(3, 16, 16, generator=g)
        ...         return {"low": hi * 0.3, "high": hi, "name": str(i)}
        >>> cfg = TrainConfig(model="nalsuper_t", text_encoder="learned:2", steps=2,
        ...     model_args={"dim": 8, "depth": 1, "num_heads": 2, "text_dim": 8},
        ...     data={"batch_size": 2}, out_dir=tempfile.mkdtemp(), log_every=0)
        >>> summary = Trainer(cfg, train_set=Pairs(), val_set=False).fit()
        >>> summary["step"], summary["nonfinite_steps"]
        (2, 0)
    """

    def __init__(
        self,
        cfg: TrainConfig,
        model: nn.Module | None = None,
        train_set: Dataset[Any] | None = None,
        val_set: Dataset[Any] | None | bool = None,
        callbacks: list[Callable[[Trainer], None]] | None = None,
    ) -> None:
        if not isinstance(cfg, TrainConfig):
            raise TypeError(f"Trainer: expected a TrainConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.callbacks = list(callbacks or [])
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        self.dist, self.device = init_distributed(cfg.device)
        self.out_dir = Path(cfg.out_dir)
        if cfg.amp == "fp16" and self.device.type != "cuda":
            raise ValueError(
                f"config amp: 'fp16' needs a CUDA device, got device {self.device}; use "
                f"amp='bf16' on CPU"
            )
        self.amp_dtype: torch.dtype | None = {
            "none": None, "bf16": torch.bfloat16, "fp16": torch.float16
        }[cfg.amp]  # fmt: skip

        # -- data -------------------------------------------------------------------------
        self.train_set = train_set if train_set is not None else self._build_dataset("train")
        if val_set is False:
            self.val_set: Dataset[Any] | None = None
        elif val_set is None or val_set is True:
            self.val_set = self._build_dataset("val") if cfg.val_every > 0 else None
        else:
            self.val_set = val_set  # type: ignore[assignment]
        n = len(self.train_set)  # type: ignore[arg-type]
        per_step = cfg.data.batch_size * self.dist.world_size
        if n < per_step:
            raise ValueError(
                f"training set has {n} pairs, fewer than one global batch "
                f"(data.batch_size={cfg.data.batch_size} x {self.dist.world_size} processes)"
            )
        self.sampler = ResumableDistributedSampler(
            self.train_set,  # type: ignore[arg-type]
            num_replicas=self.dist.world_size,
            rank=self.dist.rank,
            shuffle=True,
            seed=cfg.seed,
            drop_last=True,
        )
        self.collate = _collate_fn()
        self.batches_per_epoch = self.sampler.num_samples // cfg.data.batch_size

        # -- model, loss, optimiser -------------------------------------------------------
        torch.manual_seed(cfg.seed)
        self.model = model if model is not None else self._build_model()
        self._attach_text_encoder(self.model)
        self.model.to(self.device)
        self._register_prompts()
        if cfg.trainable is not None:
            freeze_all_but(self.model, cfg.trainable)
        from ..losses import build_loss

        self.criterion = build_loss(cfg.loss).to(self.device)
        self._build_optimization()

        # -- progress state ---------------------------------------------------------------
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.nonfinite_steps = 0
        self.nonfinite_in_row = 0
        self.best_psnr = -math.inf
        self.best_step: int | None = None
        self.last_val: dict[str, float] = {}
        self.first_val: dict[str, float] | None = None
        self.resumed_from: str | None = None
        self._batch_iter: Iterator[dict[str, Any]] | None = None
        self._tb: Any = None  # torch.utils.tensorboard.SummaryWriter while fit() runs

    # -- construction helpers -------------------------------------------------------------
    def _build_dataset(self, which: str) -> Dataset[Any]:
        try:
            from ..data import build_dataset  # type: ignore[attr-defined]
        except ImportError as err:
            raise ImportError(
                f"Trainer: building the {which} set from the config needs "
                f"textrestore.data.build_dataset ({err}); pass train_set=/val_set= instead"
            ) from err
        d, cfg = self.cfg.data, self.cfg
        if which == "train":
            return build_dataset(  # type: ignore[no-any-return]
                d.kind, root=d.root, split="train", crop=d.crop, prompt=d.prompt,
                prompts_file=d.prompts_file, seed=cfg.seed, length=d.length, size=d.size,
                degradation=d.degradation_config(),
            )  # fmt: skip
        return build_dataset(  # type: ignore[no-any-return]
            d.val_kind or d.kind, root=d.val_root or d.root, split=d.val_split, crop=d.val_crop,
            prompt=d.prompt, prompts_file=d.prompts_file, seed=cfg.seed + 1,
            length=d.val_length, size=d.size,
        )  # fmt: skip

    def _build_model(self) -> nn.Module:
        from ..models import create_model, load_weights

        try:
            model = create_model(self.cfg.model, **self.cfg.model_args)
        except TypeError as err:
            raise ValueError(
                f"config model_args {self.cfg.model_args}: not accepted by "
                f"{self.cfg.model!r}: {err}"
            ) from err
        if self.cfg.init_weights:
            load_weights(model, self.cfg.init_weights)
        return model

    def _attach_text_encoder(self, model: nn.Module) -> None:
        name = self.cfg.text_encoder
        if name is None:
            name = getattr(model, "text_encoder_name", None)
        setter: Any = getattr(model, "set_text_encoder", None)
        if name is None or name == "none" or not callable(setter):
            return
        from ..text import create_text_encoder

        kwargs: dict[str, Any] = {}
        if name.split(":", 1)[0] == "learned":
            kwargs["dim"] = int(getattr(model, "text_dim", 512))
        setter(create_text_encoder(name, **kwargs))

    def _known_prompts(self) -> list[str]:
        prompts: list[str] = []
        bank = getattr(self.model, "prompt_bank", None)
        if bank is not None:
            prompts.append(bank.default_prompt)
        if self.cfg.data.prompt:
            prompts.append(self.cfg.data.prompt)
        for ds in (self.train_set, self.val_set):
            extra = getattr(ds, "prompts", None)
            if isinstance(extra, (list, tuple)):
                prompts.extend(p for p in extra if isinstance(p, str))
        return list(dict.fromkeys(prompts))

    def _register_prompts(self) -> None:
        """Encode every known prompt before the optimiser, EMA and DDP see the model.

        A ``learned:`` encoder creates a parameter per prompt, and a frozen one stores a
        buffer per prompt: both must exist before the optimiser and DDP are built.
        """
        embed: Any = getattr(self.model, "embed_text", None)
        prompts = self._known_prompts()
        if not callable(embed) or not prompts:
            return
        with torch.no_grad():
            embed(prompts, len(prompts))

    def _build_optimization(self) -> None:
        """Build optimiser, scheduler, scaler, EMA and the DDP wrapper for ``self.model``."""
        cfg = self.cfg
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params,
            lr=cfg.lr,
            betas=(cfg.betas[0], cfg.betas[1]),
            weight_decay=cfg.weight_decay,
        )
        self.scheduler = build_scheduler(self.optimizer, cfg.steps, cfg.warmup_steps, cfg.min_lr)
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=cfg.amp == "fp16" and self.device.type == "cuda"
        )
        self.ema: AveragedModel | None = None
        if cfg.ema_decay:
            self.ema = self._build_ema(self.model, cfg.ema_decay)
        self.ddp_model = wrap_ddp(self.model, self.dist, self.device)

    def _build_ema(self, model: nn.Module, decay: float) -> AveragedModel:
        # A frozen text encoder lives outside the module tree; do not deep-copy it.
        bank = getattr(model, "prompt_bank", None)
        frozen = getattr(bank, "_frozen", None) if bank is not None else None
        if frozen is not None:
            bank.__dict__["_frozen"] = None  # type: ignore[union-attr]
        try:
            ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))
        finally:
            if frozen is not None:
                bank.__dict__["_frozen"] = frozen  # type: ignore[union-attr]
        ema_bank = getattr(ema.module, "prompt_bank", None)
        if frozen is not None and ema_bank is not None:
            ema_bank.__dict__["_frozen"] = frozen
            ema_bank._cache.clear()
        return ema

    def _sync_ema_buffers(self) -> None:
        """Copy prompt-bank buffers into the EMA model if the model learned new prompts."""
        if self.ema is None:
            return
        ema_module = self.ema.module
        if len(list(ema_module.buffers())) != len(list(self.model.buffers())):
            from ..text import PromptBank

            ema_banks = [m for m in ema_module.modules() if isinstance(m, PromptBank)]
            banks = [m for m in self.model.modules() if isinstance(m, PromptBank)]
            for mine, theirs in zip(ema_banks, banks):
                mine.load_state_dict(theirs.state_dict(), strict=False)

    # -- data iteration -------------------------------------------------------------------
    def _new_epoch_iterator(self) -> Iterator[dict[str, Any]]:
        set_epoch = getattr(self.train_set, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(self.epoch)
        self.sampler.set_epoch(self.epoch)
        self.sampler.set_start(self.batch_in_epoch * self.cfg.data.batch_size)
        loader = DataLoader(
            self.train_set,
            batch_size=self.cfg.data.batch_size,
            sampler=self.sampler,
            drop_last=True,
            num_workers=self.cfg.num_workers,
            collate_fn=self.collate,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(self.cfg.seed + self.epoch),
        )
        return iter(loader)

    def _next_batch(self) -> dict[str, Any]:
        while True:
            if self._batch_iter is None:
                self._batch_iter = self._new_epoch_iterator()
            try:
                batch = next(self._batch_iter)
            except StopIteration:
                self._batch_iter = None
                self.epoch += 1
                self.batch_in_epoch = 0
                continue
            self.batch_in_epoch += 1
            return batch

    def _text_of(self, batch: Mapping[str, Any]) -> Any:
        prompts = batch.get("prompt")
        if prompts is not None:
            return list(prompts)
        return self.cfg.data.prompt

    # -- one step -------------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def train_step(self) -> dict[str, Any]:
        """Run one optimiser step (``grad_accum`` micro-batches); returns its log record."""
        cfg = self.cfg
        torch.manual_seed(_step_seed(cfg.seed, self.step))
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        losses: list[float] = []
        terms: dict[str, float] = {}
        finite = True
        data_s = 0.0
        for micro in range(cfg.grad_accum):
            t_data = time.perf_counter()
            batch = self._next_batch()
            data_s += time.perf_counter() - t_data
            low = batch["low"].to(self.device, non_blocking=True)
            high = batch["high"].to(self.device, non_blocking=True)
            last = micro == cfg.grad_accum - 1
            sync = (
                self.ddp_model.no_sync()  # type: ignore[operator]
                if self.dist.enabled and not last
                else contextlib.nullcontext()
            )
            with sync:
                with self._autocast():
                    out = self.ddp_model(low, self._text_of(batch))
                loss = self.criterion(out.float(), high.float())
                value = float(loss.detach())
                bad = all_reduce_max(0.0 if math.isfinite(value) else 1.0, self.device)
                if bad > 0:
                    finite = False
                    losses.append(value)
                    break
                self.scaler.scale(loss / cfg.grad_accum).backward()
            losses.append(value)
            for k, v in getattr(self.criterion, "last_terms", {}).items():
                terms[k] = terms.get(k, 0.0) + float(v) / cfg.grad_accum
        grad_norm = math.nan
        if finite:
            self.scaler.unscale_(self.optimizer)
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            max_norm = cfg.grad_clip if cfg.grad_clip else math.inf
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
            if not math.isfinite(grad_norm) and not self.scaler.is_enabled():
                finite = False
        lr = float(self.optimizer.param_groups[0]["lr"])
        if finite:
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            if self.ema is not None:
                self._sync_ema_buffers()
                self.ema.update_parameters(self.model)
            self.nonfinite_in_row = 0
        else:
            self.optimizer.zero_grad(set_to_none=True)
            with warnings.catch_warnings():  # the LR schedule follows the step count
                warnings.simplefilter("ignore", UserWarning)
                self.scheduler.step()
            self.nonfinite_steps += 1
            self.nonfinite_in_row += 1
        self.step += 1
        loss_mean = sum(losses) / len(losses)
        record: dict[str, Any] = {
            "step": self.step,
            "epoch": self.epoch,
            "loss": loss_mean if math.isfinite(loss_mean) else str(loss_mean),
            "lr": lr,
            "grad_norm": grad_norm if math.isfinite(grad_norm) else None,
            "skipped": not finite,
            "data_s": data_s,  # waiting for the data pipeline (degradations, targets)
        }
        if terms and finite:
            record["terms"] = terms
        if self.nonfinite_in_row >= cfg.max_nonfinite:
            raise NonFiniteLossError(
                f"stopping at step {self.step}: {self.nonfinite_in_row} steps in a row had a "
                f"non-finite loss or gradient (max_nonfinite={cfg.max_nonfinite}); last loss "
                f"{loss_mean}. Lower lr, enable grad_clip, or use amp='none'"
            )
        return record

    # -- validation -----------------------------------------------------------------------
    def eval_model(self) -> nn.Module:
        """The weights that are validated and exported: the EMA model if enabled."""
        return self.ema.module if self.ema is not None else self.model

    def validate(self) -> dict[str, float]:
        """PSNR/SSIM of :meth:`eval_model` on the validation set (rank 0 only)."""
        if self.val_set is None:
            return {}
        from ..metrics import evaluate

        loader = DataLoader(
            self.val_set,
            batch_size=self.cfg.data.val_batch_size,
            shuffle=False,
            num_workers=self.cfg.num_workers,
            collate_fn=self.collate,
        )
        with self._autocast():
            report = evaluate(
                self.eval_model(), loader, prompts=self.cfg.data.prompt, device=self.device,
                gt_mean=False, metrics=("psnr", "ssim"),
            )  # fmt: skip
        return {"psnr": float(report["psnr"]), "ssim": float(report["ssim"])}

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly (plain types and tensors only)."""
        return {
            "version": CHECKPOINT_VERSION,
            "model": unwrap(self.model).state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "nonfinite_steps": self.nonfinite_steps,
            "nonfinite_in_row": self.nonfinite_in_row,
            "best_psnr": self.best_psnr if math.isfinite(self.best_psnr) else None,
            "best_step": self.best_step,
            "first_val": self.first_val,
            "rng": capture_rng_state(),
            "world_size": self.dist.world_size,
            "config": self.cfg.to_dict(),
        }

    def save(self, name: str = "last.pt") -> Path | None:
        """Write a checkpoint atomically on rank 0 (all ranks wait at a barrier around it)."""
        barrier()
        path: Path | None = None
        if self.dist.is_main:
            path = save_checkpoint(self.state_dict(), self.out_dir / name)
        barrier()
        return path

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (the model, EMA, optimiser, ... and data position)."""
        if state.get("world_size", 1) != self.dist.world_size:
            warnings.warn(
                f"resuming a run of {state.get('world_size')} processes on "
                f"{self.dist.world_size}: the data order changes, resume is not exact",
                stacklevel=2,
            )
        before = [id(p) for p in self.model.parameters()]
        unwrap(self.model).load_state_dict(state["model"])
        if [id(p) for p in self.model.parameters()] != before:
            # Loading re-created parameters (e.g. the learned prompts of a ``learned:``
            # encoder): the optimiser, EMA and DDP must hold the new ones.
            self._build_optimization()
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
            bank = getattr(self.ema.module, "prompt_bank", None)
            if bank is not None:
                bank._cache.clear()
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.nonfinite_steps = int(state.get("nonfinite_steps", 0))
        self.nonfinite_in_row = int(state.get("nonfinite_in_row", 0))
        best = state.get("best_psnr")
        self.best_psnr = float(best) if best is not None else -math.inf
        self.best_step = state.get("best_step")
        self.first_val = state.get("first_val")
        restore_rng_state(state["rng"])
        self._batch_iter = None

    def resume(self, path: str | os.PathLike[str]) -> None:
        """Load checkpoint ``path`` and continue from it."""
        self._resume_from(load_checkpoint(path, map_location=self.device), path)

    def _resume_from(self, state: dict[str, Any], path: str | os.PathLike[str]) -> None:
        self.load_state_dict(state)
        self.resumed_from = str(path)

    def _resolve_resume(self) -> Path | None:
        r = self.cfg.resume
        if not r:
            return None
        if r == "auto":
            last = self.out_dir / "last.pt"
            return last if last.is_file() else None
        path = Path(r)
        if not path.is_file():
            raise FileNotFoundError(f"config resume: checkpoint not found: {path}")
        return path

    def _check_same_model(self, theirs: Any, path: Path | None) -> None:
        """Refuse to resume from a checkpoint of another model (preset or model_args)."""
        if not isinstance(theirs, dict):
            return
        mine = {"model": self.cfg.model, "model_args": dict(self.cfg.model_args)}
        other = {"model": theirs.get("model"), "model_args": dict(theirs.get("model_args") or {})}
        if mine != other:
            raise ValueError(
                f"config resume: {path} is a run of model {other['model']!r} with model_args "
                f"{other['model_args']}, this config trains {mine['model']!r} with "
                f"{mine['model_args']}; use another out_dir, or resume=null to start afresh"
            )

    def _trim_log(self) -> None:
        """Drop log lines of steps after the resumed one (they are about to be re-run)."""
        log = self.out_dir / "log.jsonl"
        if not self.dist.is_main or not log.is_file():
            return
        lines = log.read_text().splitlines()
        kept = []
        for line in lines:
            try:
                step = json.loads(line).get("step")
            except (ValueError, AttributeError):
                continue  # a line cut by a killed write
            if not isinstance(step, int) or step <= self.step:
                kept.append(line)
        if len(kept) != len(lines):
            atomic_write_text(log, "".join(x + "\n" for x in kept))

    # -- logging --------------------------------------------------------------------------
    def _log(self, record: Mapping[str, Any]) -> None:
        if not self.dist.is_main:
            return
        with open(self.out_dir / "log.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")

    # -- TensorBoard (cfg.logger == "tensorboard", rank 0) ---------------------------------
    def _open_tensorboard(self) -> None:
        if self.cfg.logger != "tensorboard" or not self.dist.is_main:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ImportError(
                "config logger: 'tensorboard' needs the tensorboard package: "
                "pip install 'textrestore[tensorboard]'"
            ) from err
        self._tb = SummaryWriter(log_dir=str(self.out_dir / "tensorboard"))

    def _close_tensorboard(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def _tb_step(self, record: Mapping[str, Any]) -> None:
        tb = self._tb
        if tb is None:
            return
        step = int(record["step"])
        if isinstance(record.get("loss"), float):
            tb.add_scalar("train/loss", record["loss"], step)
        for name, value in (record.get("terms") or {}).items():
            tb.add_scalar(f"train/loss_{name}", value, step)
        tb.add_scalar("train/lr", record["lr"], step)
        if record.get("grad_norm") is not None:
            tb.add_scalar("train/grad_norm", record["grad_norm"], step)
        if record.get("it_s") is not None:
            tb.add_scalar("train/steps_per_s", record["it_s"], step)

    def _tb_validation(self, metrics: Mapping[str, float]) -> None:
        tb = self._tb
        if tb is None:
            return
        for name, value in metrics.items():
            tb.add_scalar(f"val/{name}", value, self.step)
        if self.val_set is None or self.cfg.log_images == 0:
            return
        from torchvision.utils import make_grid

        n = min(self.cfg.log_images, len(self.val_set))  # type: ignore[arg-type]
        samples = [self.val_set[i] for i in range(n)]
        h = min(int(x["low"].shape[-2]) for x in samples)
        w = min(int(x["low"].shape[-1]) for x in samples)
        low = torch.stack([x["low"][..., :h, :w] for x in samples]).to(self.device)
        high = torch.stack([x["high"][..., :h, :w] for x in samples]).to(self.device)
        model = self.eval_model()
        was_training = model.training
        model.eval()
        try:
            prompts: list[str | None] = [*self._known_prompts()[:4]] or [None]
            for prompt in prompts:
                with torch.no_grad(), self._autocast():
                    out = model(low, prompt).float().clamp(0, 1)
                rows = torch.stack([low.float(), out, high.float()], dim=1).flatten(0, 1)
                grid = make_grid(rows.cpu(), nrow=3, padding=2, pad_value=1.0)
                tag = f"val_images/{prompt or 'default prompt'}  (low | output | reference)"
                tb.add_image(tag, grid, self.step)
        finally:
            model.train(was_training)
        tb.flush()

    # -- the loop -------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train to ``cfg.steps`` (resuming first if ``cfg.resume`` says so).

        Returns:
            The summary (also written to ``out_dir/summary.json`` on rank 0).

        Raises:
            NonFiniteLossError: after ``max_nonfinite`` non-finite steps in a row.
        """
        cfg = self.cfg
        path = self._resolve_resume()
        # read and checked before anything in out_dir is written
        state = load_checkpoint(path, map_location=self.device) if path is not None else None
        if state is not None:
            self._check_same_model(state.get("config"), path)
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            cfg.save(self.out_dir / "config.yaml")
        barrier()
        if state is not None and path is not None:
            self._resume_from(state, path)
            self._trim_log()
        prev_det = torch.are_deterministic_algorithms_enabled()
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True)
        from tqdm.auto import tqdm

        bar = tqdm(
            total=cfg.steps, initial=self.step, unit="it", dynamic_ncols=True,
            disable=not (self.dist.is_main and _is_tty()), desc="train",
        )  # fmt: skip
        start, start_step = time.perf_counter(), self.step
        step_s = data_s = 0.0  # time in train_step, and in it waiting for data
        self._open_tensorboard()
        try:
            if self.first_val is None and self.val_set is not None and self.dist.is_main:
                self.first_val = self.validate()
                self._log({"step": self.step, "val": self.first_val})
                self._tb_validation(self.first_val)
            while self.step < cfg.steps:
                t0 = time.perf_counter()
                record = self.train_step()
                dt = time.perf_counter() - t0
                step_s, data_s = step_s + dt, data_s + record["data_s"]
                record["it_s"] = 1.0 / dt if dt > 0 else None
                self._log(record)
                self._tb_step(record)
                bar.update(1)
                bar.set_postfix(loss=record["loss"], lr=f"{record['lr']:.2e}")
                if (
                    bar.disable
                    and self.dist.is_main
                    and cfg.log_every
                    and (self.step % cfg.log_every == 0 or self.step == cfg.steps)
                ):
                    print(
                        f"step {self.step}/{cfg.steps} loss {record['loss']} "
                        f"lr {record['lr']:.3e} {record['it_s'] or 0:.2f} it/s",
                        flush=True,
                    )
                done = self.step == cfg.steps
                if cfg.val_every and self.step % cfg.val_every == 0 or done:
                    self._validate_and_keep_best()
                if cfg.ckpt_every and self.step % cfg.ckpt_every == 0 or done:
                    self.save("last.pt")
                for cb in self.callbacks:
                    cb(self)
        finally:
            bar.close()
            self._close_tensorboard()
            torch.use_deterministic_algorithms(prev_det)
        seconds = time.perf_counter() - start
        summary = {
            "step": self.step,
            "epoch": self.epoch,
            "steps_this_run": self.step - start_step,
            "seconds": round(seconds, 3),
            "it_s": (self.step - start_step) / seconds if seconds > 0 else None,
            "data_wait_fraction": round(data_s / step_s, 4) if step_s > 0 else None,
            "nonfinite_steps": self.nonfinite_steps,
            "first_val": self.first_val,
            "last_val": self.last_val or None,
            "best_psnr": self.best_psnr if math.isfinite(self.best_psnr) else None,
            "best_step": self.best_step,
            "resumed_from": self.resumed_from,
            "world_size": self.dist.world_size,
            "out_dir": str(self.out_dir),
        }
        if self.dist.is_main:
            atomic_write_text(self.out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        barrier()
        return summary

    def _validate_and_keep_best(self) -> None:
        if self.val_set is None:
            return
        improved = False
        if self.dist.is_main:
            self.last_val = self.validate()
            self._log({"step": self.step, "val": self.last_val})
            self._tb_validation(self.last_val)
            psnr = self.last_val.get("psnr", -math.inf)
            if psnr > self.best_psnr:
                self.best_psnr, self.best_step, improved = psnr, self.step, True
        if all_reduce_max(1.0 if improved else 0.0, self.device) > 0:
            self.save("best.pt")


def _collate_fn() -> Callable[[list[Any]], Any]:
    try:
        from ..data import collate_pairs  # type: ignore[attr-defined]
    except ImportError:
        return default_collate
    return collate_pairs  # type: ignore[no-any-return]

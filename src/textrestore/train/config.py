"""Training configuration: a dataclass loadable from YAML/TOML with ``key=value`` overrides.

Example:
    >>> cfg = TrainConfig.from_dict({"steps": 10, "data": {"kind": "synthetic"}},
    ...                             overrides=["lr=1e-3", "data.batch_size=2"])
    >>> cfg.steps, cfg.lr, cfg.data.batch_size
    (10, 0.001, 2)
    >>> TrainConfig.from_dict({"stepz": 3})
    Traceback (most recent call last):
    ...
    ValueError: unknown config key 'stepz'; valid keys: ...
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._atomic import atomic_write_text
from ..data.kinds import DATASET_KINDS

__all__ = [
    "TrainConfig", "DataConfig", "parse_overrides", "apply_overrides", "AMP_MODES", "LOGGERS",
]  # fmt: skip

#: Valid values of :attr:`TrainConfig.amp`.
AMP_MODES: tuple[str, ...] = ("none", "bf16", "fp16")
#: Valid values of :attr:`TrainConfig.logger`.
LOGGERS: tuple[str, ...] = ("none", "tensorboard")
#: Dataset kinds understood by :func:`textrestore.data.build_dataset`.
DATA_KINDS: tuple[str, ...] = DATASET_KINDS


@dataclass
class DataConfig:
    """Where the training and validation pairs come from (``textrestore.data.build_dataset``).

    Attributes:
        kind: dataset kind, one of ``lol_v1``, ``lol_v2_real``, ``lol_v2_synthetic``,
            ``generic``, ``synthetic``.
        root: dataset folder (None for ``synthetic``).
        crop: square training crop size (None: full images).
        batch_size: images per optimiser micro-batch *per process*.
        prompt: one prompt for every image (None: the dataset's per-image prompts, else
            the model's default prompt).
        prompts_file: sidecar CSV/JSON of per-image prompts.
        length: number of training pairs (``synthetic`` only; None: the dataset's default).
        size: image size of ``synthetic`` pairs.
        val_kind: validation dataset kind (None: same as ``kind``).
        val_root: validation folder (None: same as ``root``).
        val_split: validation split name.
        val_length: number of validation pairs (``synthetic``).
        val_crop: crop of validation images (None: full images).
        val_batch_size: validation batch size (1 allows images of different sizes).
        degradation: ``synthetic`` and ``photos``: fields of
            :class:`~textrestore.data.DegradationConfig` that change the degradation of
            the training pairs, e.g. ``{"well_exposed": 0.2}`` (None: the training mix).
            The validation pairs keep the training mix, so that runs compare.
    """

    kind: str = "synthetic"
    root: str | None = None
    crop: int | None = None
    batch_size: int = 4
    prompt: str | None = None
    prompts_file: str | None = None
    length: int | None = None
    size: int = 256
    val_kind: str | None = None
    val_root: str | None = None
    val_split: str = "test"
    val_length: int | None = None
    val_crop: int | None = None
    val_batch_size: int = 1
    degradation: dict[str, Any] | None = None

    def degradation_config(self) -> Any:
        """The :class:`~textrestore.data.DegradationConfig` of :attr:`degradation` (or None).

        Raises:
            ValueError: an unknown field (the valid ones are listed) or a bad value.
        """
        if self.degradation is None:
            return None
        from ..data.degradation import DegradationConfig

        valid = [f.name for f in dataclasses.fields(DegradationConfig)]
        values: dict[str, Any] = {}
        for key, value in self.degradation.items():
            if key not in valid:
                raise ValueError(
                    f"unknown config key 'data.degradation.{key}'; valid keys: {', '.join(valid)}"
                )
            values[key] = tuple(value) if isinstance(value, list) else value
        try:
            return DegradationConfig(**values)
        except (TypeError, ValueError) as err:
            raise ValueError(f"config data.degradation: {err}") from None


@dataclass
class TrainConfig:
    """Everything a :class:`~textrestore.train.Trainer` run needs.

    Attributes:
        model: model preset name (``textrestore.create_model``).
        model_args: keyword overrides of the preset (``{"dim": 8, "depth": 2}``).
        init_weights: weights file loaded into the model before training (fine-tuning).
        trainable: glob patterns (``fnmatch``, case-sensitive) of the parameter names to
            train, e.g. ``["*.tcm.k.*", "*.tcm.v.*"]`` to fine-tune only how the text is
            read; every other parameter is frozen and left out of the optimiser. None:
            train every parameter that requires a gradient.
        text_encoder: text encoder name (``"minilm"``, ``"learned:8"``, ``"openclip:ViT-B-32"``);
            None: the preset's own encoder; ``"none"``: attach none (the model's prompt
            bank must already hold the prompts).
        loss: loss spec for :func:`textrestore.losses.build_loss` (default L1 + SSIM).
        data: see :class:`DataConfig`.
        steps: optimiser steps (each one consumes ``grad_accum`` micro-batches).
        lr: peak learning rate.
        min_lr: floor of the cosine decay.
        betas: AdamW betas.
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up steps before the cosine decay.
        grad_clip: max gradient norm (0 or None: no clipping).
        grad_accum: micro-batches per optimiser step.
        amp: ``"none"``, ``"bf16"`` (CPU or CUDA) or ``"fp16"`` (CUDA, with a GradScaler).
        ema_decay: EMA decay of the weights (0 or None: no EMA).
        val_every: validate every N steps (0: only at the end).
        ckpt_every: write ``last.pt`` every N steps (0: only at the end).
        out_dir: folder of checkpoints, ``log.jsonl``, ``summary.json`` and ``config.yaml``.
        resume: ``"auto"`` (``out_dir/last.pt`` if present), a checkpoint path, or None.
        seed: seed of the model initialisation, sampler order and per-step randomness.
        deterministic: ``torch.use_deterministic_algorithms(True)`` during training.
        log_every: print a line every N steps when the progress bar is off (0: never).
        max_nonfinite: stop after this many non-finite steps in a row.
        num_workers: DataLoader workers.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        threads: ``torch.set_num_threads`` for the run (None: leave as is).
        logger: ``"none"`` or ``"tensorboard"``: event files in ``out_dir/tensorboard``
            (rank 0; needs the ``tensorboard`` extra) with the loss terms, LR, grad norm,
            steps/s, validation PSNR/SSIM and, at each validation, a grid of
            low | output | reference images per prompt.
        log_images: validation images per grid of the TensorBoard logger (0: no images).
    """

    model: str = "nalsuper_s"
    model_args: dict[str, Any] = field(default_factory=dict)
    init_weights: str | None = None
    trainable: list[str] | None = None
    text_encoder: str | None = None
    loss: Any = "nalsuper"
    data: DataConfig = field(default_factory=DataConfig)
    steps: int = 1000
    lr: float = 2e-4
    min_lr: float = 1e-6
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 1e-4
    warmup_steps: int = 0
    grad_clip: float | None = 1.0
    grad_accum: int = 1
    amp: str = "none"
    ema_decay: float | None = None
    val_every: int = 0
    ckpt_every: int = 0
    out_dir: str = "runs/train"
    resume: str | None = None
    seed: int = 0
    deterministic: bool = False
    log_every: int = 50
    max_nonfinite: int = 5
    num_workers: int = 0
    device: str = "auto"
    threads: int | None = None
    logger: str = "none"
    log_images: int = 2

    def __post_init__(self) -> None:
        if isinstance(self.data, Mapping):
            self.data = _build(DataConfig, self.data, "data.")
        if isinstance(self.trainable, str):
            self.trainable = [self.trainable]
        elif isinstance(self.trainable, tuple):
            self.trainable = list(self.trainable)
        _coerce(self)
        _coerce(self.data, "data.")
        self.validate()

    # -- checks ---------------------------------------------------------------------------
    def validate(self) -> None:
        """Check ranges and choices; raise ``ValueError`` naming the key, expected and got."""

        def need(ok: bool, key: str, expected: str, got: Any) -> None:
            if not ok:
                raise ValueError(f"config {key}: expected {expected}, got {got!r}")

        need(isinstance(self.model, str) and bool(self.model), "model", "a preset name", self.model)
        need(isinstance(self.model_args, dict), "model_args", "a mapping", self.model_args)
        need(
            self.trainable is None
            or (
                isinstance(self.trainable, list)
                and bool(self.trainable)
                and all(isinstance(p, str) and p for p in self.trainable)
            ),
            "trainable", "None or a non-empty list of parameter-name patterns", self.trainable,
        )  # fmt: skip
        need(self.steps >= 1, "steps", "an int >= 1", self.steps)
        need(self.lr > 0, "lr", "a float > 0", self.lr)
        need(self.min_lr >= 0, "min_lr", "a float >= 0", self.min_lr)
        need(len(self.betas) == 2, "betas", "two floats [beta1, beta2]", self.betas)
        need(self.weight_decay >= 0, "weight_decay", "a float >= 0", self.weight_decay)
        need(self.warmup_steps >= 0, "warmup_steps", "an int >= 0", self.warmup_steps)
        need(self.grad_accum >= 1, "grad_accum", "an int >= 1", self.grad_accum)
        need(self.amp in AMP_MODES, "amp", f"one of {list(AMP_MODES)}", self.amp)
        need(
            self.ema_decay is None or 0.0 <= self.ema_decay < 1.0,
            "ema_decay", "None or a float in [0, 1)", self.ema_decay,
        )  # fmt: skip
        need(self.grad_clip is None or self.grad_clip >= 0, "grad_clip", ">= 0", self.grad_clip)
        for key in ("val_every", "ckpt_every", "log_every", "num_workers"):
            need(getattr(self, key) >= 0, key, "an int >= 0", getattr(self, key))
        need(self.max_nonfinite >= 1, "max_nonfinite", "an int >= 1", self.max_nonfinite)
        need(self.threads is None or self.threads >= 1, "threads", "None or >= 1", self.threads)
        need(self.logger in LOGGERS, "logger", f"one of {list(LOGGERS)}", self.logger)
        need(self.log_images >= 0, "log_images", "an int >= 0", self.log_images)
        d = self.data
        need(d.kind in DATA_KINDS, "data.kind", f"one of {list(DATA_KINDS)}", d.kind)
        need(
            d.val_kind is None or d.val_kind in DATA_KINDS,
            "data.val_kind", f"None or one of {list(DATA_KINDS)}", d.val_kind,
        )  # fmt: skip
        need(d.batch_size >= 1, "data.batch_size", "an int >= 1", d.batch_size)
        need(d.val_batch_size >= 1, "data.val_batch_size", "an int >= 1", d.val_batch_size)
        need(d.crop is None or d.crop >= 1, "data.crop", "None or an int >= 1", d.crop)
        need(d.size >= 1, "data.size", "an int >= 1", d.size)
        need(
            d.degradation is None or isinstance(d.degradation, dict),
            "data.degradation", "None or a mapping of DegradationConfig fields", d.degradation,
        )  # fmt: skip
        d.degradation_config()

    # -- (de)serialisation ----------------------------------------------------------------
    @classmethod
    def from_dict(
        cls, values: Mapping[str, Any], overrides: Iterable[str] | Mapping[str, Any] = ()
    ) -> TrainConfig:
        """Build from a (nested) mapping, then apply ``key=value`` overrides.

        Args:
            values: mapping of field names; ``data`` may be a nested mapping.
            overrides: ``"key=value"`` strings (dotted keys reach into ``data`` and
                ``model_args``; values parsed with ``yaml.safe_load``) or a mapping.

        Raises:
            ValueError: an unknown key (the message lists the valid ones) or a bad value.
        """
        if not isinstance(values, Mapping):
            raise TypeError(f"TrainConfig: expected a mapping, got {type(values).__name__}")
        merged = apply_overrides(_plain(values), overrides)
        return _build(cls, merged, "")

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], overrides: Iterable[str] | Mapping[str, Any] = ()
    ) -> TrainConfig:
        """Load a ``.yaml``/``.yml``, ``.toml`` or ``.json`` file, then apply ``overrides``."""
        return cls.from_dict(load_mapping(path), overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON/YAML serialisable); ``from_dict(to_dict())`` round-trips."""
        return _plain(dataclasses.asdict(self))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the config as YAML (``.yaml``/``.yml``) or JSON (any other suffix)."""
        import yaml

        path = Path(path)
        if path.suffix in (".yaml", ".yml"):
            text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        else:
            text = json.dumps(self.to_dict(), indent=2) + "\n"
        return atomic_write_text(path, text)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (``data`` may be a mapping of data fields)."""
        values = self.to_dict()
        data = changes.pop("data", None)
        values.update(changes)
        if data is not None:
            values["data"] = {**values["data"], **_plain(data)}
        return TrainConfig.from_dict(values)


# -- helpers -----------------------------------------------------------------------------
def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _plain(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _build(cls: Any, values: Mapping[str, Any], prefix: str) -> Any:
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in names:
            where = f" of {prefix[:-1]}" if prefix else ""
            raise ValueError(
                f"unknown config key {prefix + str(key)!r}; valid keys{where}: {', '.join(names)}"
            )
    return cls(**dict(values))


_INT_FIELDS = {
    "steps", "warmup_steps", "grad_accum", "val_every", "ckpt_every", "seed", "log_every",
    "max_nonfinite", "num_workers", "threads", "crop", "batch_size", "length", "size",
    "val_length", "val_crop", "val_batch_size", "log_images",
}  # fmt: skip
_FLOAT_FIELDS = {"lr", "min_lr", "weight_decay", "grad_clip", "ema_decay"}
_STR_FIELDS = {
    "model", "init_weights", "text_encoder", "amp", "out_dir", "resume", "device", "kind",
    "root", "prompt", "prompts_file", "val_kind", "val_root", "val_split", "logger",
}  # fmt: skip


def _coerce(obj: Any, prefix: str = "") -> None:
    """Coerce YAML-parsed values (``"1e-3"`` is a str in YAML 1.1) and check basic types."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = prefix + f.name
        if value is None or f.name in ("data", "loss"):
            continue
        if f.name in _INT_FIELDS:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError(f"config {key}: expected an int, got {value!r}")
            try:
                as_float = float(value)
            except ValueError:
                raise ValueError(f"config {key}: expected an int, got {value!r}") from None
            if as_float != int(as_float):
                raise ValueError(f"config {key}: expected an int, got {value!r}")
            setattr(obj, f.name, int(as_float))
        elif f.name in _FLOAT_FIELDS:
            try:
                if isinstance(value, bool):
                    raise ValueError
                setattr(obj, f.name, float(value))
            except (TypeError, ValueError):
                raise ValueError(f"config {key}: expected a number, got {value!r}") from None
        elif f.name in _STR_FIELDS:
            if not isinstance(value, str):
                raise ValueError(f"config {key}: expected a str, got {value!r}")
        elif f.name == "deterministic":
            if not isinstance(value, bool):
                raise ValueError(f"config {key}: expected true or false, got {value!r}")
        elif f.name == "betas":
            try:
                setattr(obj, f.name, [float(v) for v in value])
            except (TypeError, ValueError):
                raise ValueError(f"config {key}: expected two floats, got {value!r}") from None
        elif f.name == "model_args" and not isinstance(value, Mapping):
            raise ValueError(f"config {key}: expected a mapping, got {value!r}")


def load_mapping(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML, TOML or JSON file into a dict (error names the file and the problem)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(path.read_text()) or {}
    elif suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - exercised on 3.10 only
            try:
                import tomli as tomllib
            except ImportError:
                raise ImportError(
                    f"reading {path} needs a TOML parser: Python 3.11+ ships tomllib; on "
                    "Python 3.10 run `pip install tomli`, or use a YAML config"
                ) from None
        data = tomllib.loads(path.read_text())
    elif suffix == ".json":
        data = json.loads(path.read_text())
    else:
        raise ValueError(
            f"config file {path}: expected .yaml, .yml, .toml or .json, got {suffix!r}"
        )
    if not isinstance(data, dict):
        raise ValueError(
            f"config file {path}: expected a mapping at top level, got {type(data).__name__}"
        )
    return data


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings into ``{dotted_key: value}`` (values via ``yaml.safe_load``).

    Example:
        >>> parse_overrides(["steps=3", "data.crop=null", "betas=[0.9, 0.99]"])
        {'steps': 3, 'data.crop': None, 'betas': [0.9, 0.99]}
    """
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, str) or "=" not in item:
            raise ValueError(f"override {item!r}: expected key=value (e.g. steps=100)")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ValueError(f"override {item!r}: empty key")
        try:
            out[key] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise ValueError(f"override {item!r}: cannot parse the value: {err}") from None
    return out


def apply_overrides(
    values: dict[str, Any], overrides: Iterable[str] | Mapping[str, Any]
) -> dict[str, Any]:
    """Return ``values`` with dotted-key ``overrides`` applied (nested dicts are created)."""
    pairs = dict(overrides) if isinstance(overrides, Mapping) else parse_overrides(overrides)
    out = _plain(values)
    for key, value in pairs.items():
        parts = str(key).split(".")
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ValueError(f"override {key!r}: {'.'.join(parts[: i + 1])!r} is not a mapping")
            node = child
        node[parts[-1]] = _plain(value)
    return out

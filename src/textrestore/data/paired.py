"""Paired low/normal-light image folders: LOL-v1, LOL-v2 (real, synthetic) and generic.

Layouts (``layout=``, ``split="train"`` or ``"test"``):

=====================  =====================================================================
``lol_v1``             ``our485/{low,high}`` (train), ``eval15/{low,high}`` (test)
``lol_v2_real``        ``Real_captured/{Train,Test}/{Low,Normal}``; ``low00001.png`` pairs
                       with ``normal00001.png`` (the ``low``/``normal`` prefix is ignored)
``lol_v2_synthetic``   ``Synthetic/{Train,Test}/{Low,Normal}``, same names in both folders
``generic``            ``low/`` and ``high/`` (or ``low_dir=``/``high_dir=``), matched by stem
=====================  =====================================================================

At construction the folders are scanned once and every problem is reported together in
one :class:`PairingError`: low images without a target, targets without a low image,
pairs whose sizes differ, and files whose header cannot be read.

Prompts: ``prompt="..."`` gives every sample the same prompt; ``prompts=`` gives one per
image, from a mapping ``{stem: prompt}``, a JSON file (``{"name": "prompt"}``), a CSV
file (columns ``name,prompt``) or ``"sidecar"`` (a ``<stem>.txt`` file next to each low
image). Names match by file stem (``"1"``, ``"1.png"`` both work).

Example:
    >>> import tempfile, os, torch
    >>> from textrestore.data import write_image
    >>> root = tempfile.mkdtemp()
    >>> for sub in ("our485/low", "our485/high"):
    ...     os.makedirs(os.path.join(root, sub))
    ...     _ = write_image(os.path.join(root, sub, "1.png"), torch.rand(3, 8, 8))
    >>> ds = PairedImageFolder(root, layout="lol_v1", split="train", prompt="normal light image")
    >>> s = ds[0]
    >>> s["low"].shape, s["name"], s["prompt"]
    (torch.Size([3, 8, 8]), '1', 'normal light image')
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .image_io import is_image_file, read_image_array, to_tensor
from .transforms import PairedTransform, sample_seed

__all__ = [
    "PairedImageFolder",
    "PairingError",
    "LAYOUTS",
    "find_pairs",
    "image_size",
    "load_prompts",
]

PathLike = str | os.PathLike

#: layout -> split -> (low folder, high folder), relative to the root.
LAYOUTS: dict[str, dict[str, tuple[str, str]]] = {
    "lol_v1": {"train": ("our485/low", "our485/high"), "test": ("eval15/low", "eval15/high")},
    "lol_v2_real": {
        "train": ("Real_captured/Train/Low", "Real_captured/Train/Normal"),
        "test": ("Real_captured/Test/Low", "Real_captured/Test/Normal"),
    },
    "lol_v2_synthetic": {
        "train": ("Synthetic/Train/Low", "Synthetic/Train/Normal"),
        "test": ("Synthetic/Test/Low", "Synthetic/Test/Normal"),
    },
    "generic": {"train": ("low", "high"), "test": ("low", "high")},
}

_PREFIX = re.compile(r"^(low|normal|high)[_-]?", re.IGNORECASE)


def _key(stem: str, layout: str) -> str:
    return _PREFIX.sub("", stem) if layout == "lol_v2_real" else stem


class PairingError(ValueError):
    """Problems found while pairing two folders, all listed in one message.

    Attributes:
        unpaired_low: low images without a normal-light target.
        unpaired_high: targets without a low image.
        size_mismatches: ``(low, high, low_size, high_size)`` with sizes as (W, H).
        unreadable: ``(path, reason)`` of files whose header could not be read.
    """

    def __init__(
        self,
        low_dir: Path,
        high_dir: Path,
        unpaired_low: list[Path],
        unpaired_high: list[Path],
        size_mismatches: list[tuple[Path, Path, tuple[int, int], tuple[int, int]]],
        unreadable: list[tuple[Path, str]],
    ) -> None:
        self.unpaired_low, self.unpaired_high = unpaired_low, unpaired_high
        self.size_mismatches, self.unreadable = size_mismatches, unreadable
        lines = [f"cannot pair the images of {low_dir} (low) and {high_dir} (high):"]
        if unpaired_low:
            lines.append(f"{len(unpaired_low)} low image(s) without a target in {high_dir}:")
            lines += [f"  {p}" for p in unpaired_low]
        if unpaired_high:
            lines.append(f"{len(unpaired_high)} target image(s) without a low image in {low_dir}:")
            lines += [f"  {p}" for p in unpaired_high]
        if size_mismatches:
            lines.append(f"{len(size_mismatches)} pair(s) of different sizes (W x H):")
            lines += [
                f"  {lo} {ls[0]}x{ls[1]} vs {hi} {hs[0]}x{hs[1]}"
                for lo, hi, ls, hs in size_mismatches
            ]
        if unreadable:
            lines.append(f"{len(unreadable)} unreadable file(s):")
            lines += [f"  {p}: {why}" for p, why in unreadable]
        super().__init__("\n".join(lines))


def image_size(path: PathLike) -> tuple[int, int]:
    """(width, height) of an image file from its header, after EXIF orientation.

    Raises:
        ValueError: the header cannot be read (the message names the file).
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
            orientation = int(im.getexif().get(0x0112, 1))
    except Exception as err:
        raise ValueError(f"cannot read the image header of {path}: {err}") from err
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def find_pairs(
    low_dir: PathLike, high_dir: PathLike, layout: str = "generic", check_sizes: bool = True
) -> list[tuple[Path, Path]]:
    """Match the images of two folders by file stem; report every problem at once.

    Args:
        low_dir: folder of low-light images.
        high_dir: folder of normal-light targets.
        layout: ``"lol_v2_real"`` ignores a ``low``/``normal`` name prefix.
        check_sizes: read both headers of every pair and compare the sizes.

    Returns:
        Sorted ``(low, high)`` path pairs.

    Raises:
        FileNotFoundError: a folder is missing or holds no images.
        PairingError: unpaired files, size mismatches or unreadable headers (all listed).
    """
    low_dir, high_dir = Path(low_dir), Path(high_dir)
    for d in (low_dir, high_dir):
        if not d.is_dir():
            raise FileNotFoundError(f"image folder not found: {d}")

    def scan(d: Path) -> tuple[dict[str, Path], list[Path]]:
        files: dict[str, Path] = {}
        dupes: list[Path] = []
        for p in sorted(d.iterdir()):
            if p.is_file() and is_image_file(p) and not p.name.startswith("."):
                k = _key(p.stem, layout)
                if k in files:
                    dupes.append(p)
                else:
                    files[k] = p
        return files, dupes

    lows, low_dupes = scan(low_dir)
    highs, high_dupes = scan(high_dir)
    if not lows and not highs:
        raise FileNotFoundError(
            f"no images ({', '.join(('.png', '.jpg', '...'))}) in {low_dir} or {high_dir}"
        )
    unpaired_low = sorted([p for k, p in lows.items() if k not in highs] + low_dupes)
    unpaired_high = sorted([p for k, p in highs.items() if k not in lows] + high_dupes)
    keys = sorted(set(lows) & set(highs), key=_natural)
    mismatches: list[tuple[Path, Path, tuple[int, int], tuple[int, int]]] = []
    unreadable: list[tuple[Path, str]] = []
    if check_sizes:
        for k in keys:
            sizes = []
            for p in (lows[k], highs[k]):
                try:
                    sizes.append(image_size(p))
                except ValueError as err:
                    unreadable.append((p, str(err.__cause__ or err)))
            if len(sizes) == 2 and sizes[0] != sizes[1]:
                mismatches.append((lows[k], highs[k], sizes[0], sizes[1]))
    if unpaired_low or unpaired_high or mismatches or unreadable:
        raise PairingError(low_dir, high_dir, unpaired_low, unpaired_high, mismatches, unreadable)
    return [(lows[k], highs[k]) for k in keys]


def _natural(s: str) -> tuple[Any, ...]:
    """Sort key that puts "2" before "10"."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s))


def load_prompts(source: PathLike | Mapping[str, str]) -> dict[str, str]:
    """Read per-image prompts from a mapping, a JSON file or a CSV file.

    JSON: an object ``{"name": "prompt", ...}`` or a list of ``{"name": ..., "prompt": ...}``.
    CSV: columns ``name`` and ``prompt`` (a header line is optional). Names are reduced to
    their stem (``"1.png"`` -> ``"1"``).

    Example:
        >>> load_prompts({"1.png": "a dark room"})
        {'1': 'a dark room'}
    """
    if isinstance(source, Mapping):
        items = list(source.items())
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"prompt file not found: {path}")
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, list):
                items = [(d["name"], d["prompt"]) for d in data]
            elif isinstance(data, dict):
                items = list(data.items())
            else:
                raise ValueError(
                    f"{path}: expected a JSON object name -> prompt, got {type(data).__name__}"
                )
        elif path.suffix.lower() in (".csv", ".tsv"):
            delim = "\t" if path.suffix.lower() == ".tsv" else ","
            with open(path, newline="", encoding="utf-8") as fh:
                rows = [r for r in csv.reader(fh, delimiter=delim) if r]
            if rows and [c.strip().lower() for c in rows[0][:2]] == ["name", "prompt"]:
                rows = rows[1:]
            bad = [i for i, r in enumerate(rows) if len(r) < 2]
            if bad:
                raise ValueError(f"{path}: rows {bad} do not have two columns name,prompt")
            items = [(r[0], r[1]) for r in rows]
        else:
            raise ValueError(
                f"prompt file {path}: expected a .json or .csv file, got {path.suffix!r}"
            )
    out: dict[str, str] = {}
    for name, prompt in items:
        if not isinstance(prompt, str):
            raise TypeError(f"prompt for {name!r}: expected a str, got {type(prompt).__name__}")
        out[Path(str(name)).stem if is_image_file(str(name)) else str(name)] = prompt
    return out


class PairedImageFolder(Dataset):
    """Low/normal-light image pairs from a folder layout (see the module docstring).

    Each sample is ``{"low": (3, H, W), "high": (3, H, W), "name": str}`` (float32 in
    [0, 1]) plus ``"prompt": str`` when prompts are configured. Random augmentation is
    drawn from a generator seeded by ``(seed, epoch, index)``, so a sample depends on
    nothing else (not on the worker, process or order of access); call
    :meth:`set_epoch` at the start of every epoch.

    Args:
        root: dataset root (for ``generic``: the folder holding ``low/`` and ``high/``).
        layout: ``"lol_v1"``, ``"lol_v2_real"``, ``"lol_v2_synthetic"`` or ``"generic"``.
        split: ``"train"`` or ``"test"``.
        transform: a :class:`PairedTransform` (or any ``(low, high, generator) -> pair``);
            None keeps full images.
        crop: shorthand for ``PairedTransform(crop, hflip=True, rot90=True)``.
        prompt: one prompt for every sample.
        prompts: per-image prompts: mapping, JSON/CSV path or ``"sidecar"``; images
            missing from it get ``prompt`` (an error if ``prompt`` is None).
        low_dir: explicit low folder (``generic``), relative to ``root`` or absolute.
        high_dir: explicit target folder (``generic``).
        seed: base seed of the augmentation.
        cache: keep decoded images in memory (as 8/16-bit arrays).
        check_sizes: compare the sizes of every pair at construction.
    """

    def __init__(
        self,
        root: PathLike,
        layout: str = "lol_v1",
        split: str = "train",
        transform: PairedTransform | Callable[..., Any] | None = None,
        crop: int | None = None,
        prompt: str | None = None,
        prompts: PathLike | Mapping[str, str] | None = None,
        low_dir: PathLike | None = None,
        high_dir: PathLike | None = None,
        seed: int = 0,
        cache: bool = False,
        check_sizes: bool = True,
    ) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; expected one of {sorted(LAYOUTS)}")
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if transform is not None and crop is not None:
            raise ValueError("give either transform= or crop=, not both")
        self.root, self.layout, self.split = Path(root), layout, split
        if not self.root.is_dir():
            raise FileNotFoundError(f"dataset root not found: {self.root}")
        lo_rel, hi_rel = LAYOUTS[layout][split]
        self.low_dir = self.root / (low_dir if low_dir is not None else lo_rel)
        self.high_dir = self.root / (high_dir if high_dir is not None else hi_rel)
        for d, what in ((self.low_dir, "low"), (self.high_dir, "high")):
            if not d.is_dir():
                raise FileNotFoundError(
                    f"{layout} layout ({split}): {what} folder {d} not found; expected "
                    f"{self.root}/{lo_rel} and {self.root}/{hi_rel}"
                )
        self.pairs = find_pairs(self.low_dir, self.high_dir, layout, check_sizes=check_sizes)
        self.transform = PairedTransform(crop) if crop is not None else transform
        self.seed, self.epoch = int(seed), 0
        self.names = [_key(lo.stem, layout) for lo, _ in self.pairs]
        self.prompt_list = self._resolve_prompts(prompt, prompts)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None

    def _resolve_prompts(
        self, prompt: str | None, prompts: PathLike | Mapping[str, str] | None
    ) -> list[str] | None:
        if prompt is not None and not isinstance(prompt, str):
            raise TypeError(f"prompt: expected a str, got {type(prompt).__name__}")
        if prompts is None:
            return None if prompt is None else [prompt] * len(self.pairs)
        table: dict[str, str] = {}
        if isinstance(prompts, str) and prompts == "sidecar":
            for (lo, _), name in zip(self.pairs, self.names):
                txt = lo.with_suffix(".txt")
                if txt.is_file():
                    table[name] = txt.read_text(encoding="utf-8").strip()
        else:
            table = load_prompts(prompts)
        missing = [n for n in self.names if n not in table]
        if missing and prompt is None:
            raise ValueError(
                f"{len(missing)} image(s) have no prompt and no default prompt= was given: "
                f"{missing}"
            )
        return [table.get(n, prompt or "") for n in self.names]

    @property
    def prompts(self) -> list[str]:
        """The distinct prompts of the samples, in order of first use (empty without prompts).

        A trainer encodes these into the model's prompt bank before training.
        """
        return list(dict.fromkeys(self.prompt_list or []))

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that seeds the augmentation (with the base seed and the index)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def _arrays(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        lo_path, hi_path = self.pairs[index]
        lo, hi = read_image_array(lo_path), read_image_array(hi_path)
        if lo.shape != hi.shape:
            raise ValueError(
                f"{lo_path} {lo.shape[1]}x{lo.shape[0]} and {hi_path} {hi.shape[1]}x{hi.shape[0]} "
                f"differ in size"
            )
        if self._cache is not None:
            self._cache[index] = (lo, hi)
        return lo, hi

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.pairs):
            raise IndexError(f"index {index} out of range for {len(self.pairs)} pairs")
        lo_arr, hi_arr = self._arrays(index)
        low, high = to_tensor(lo_arr), to_tensor(hi_arr)
        if self.transform is not None:
            gen = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, index))
            low, high = self.transform(low, high, gen)
        sample: dict[str, Any] = {"low": low, "high": high, "name": self.names[index]}
        if self.prompt_list is not None:
            sample["prompt"] = self.prompt_list[index]
        return sample

    def __repr__(self) -> str:
        return (
            f"PairedImageFolder(root={str(self.root)!r}, layout={self.layout!r}, "
            f"split={self.split!r}, pairs={len(self)})"
        )

"""Paired low/normal-light image folders: LOL-v1, LOL-v2 (real, synthetic) and generic.

Layouts (``layout=``; ``split="train"``, or ``"test"``/``"val"`` for the held-out part):

=====================  =====================================================================
``lol_v1``             ``our485/{low,high}`` (train), ``eval15/{low,high}`` (test/val)
``lol_v2_real``        ``{Train,Test}/{Low,Normal}`` under ``root`` (the ``Real_captured``
                       folder; ``root/Real_captured/...`` is found too); ``low00001.png``
                       pairs with ``normal00001.png`` by the numeric id (the
                       ``low``/``normal`` prefix is ignored)
``lol_v2_synthetic``   ``{Train,Test}/{Low,Normal}`` under ``root`` (the ``Synthetic`` folder;
                       ``root/Synthetic/...`` is found too), same names in both folders
``generic``            ``low_dir``/``high_dir`` (default ``root/low``, ``root/high``),
                       matched by file stem; the split is ignored
=====================  =====================================================================

At construction the folders are scanned once and every problem is reported together in
one :class:`PairingError` (a ``ValueError``): low images without a target, targets without
a low image, pairs whose sizes differ, and files whose header cannot be read.

Prompts: ``prompt="..."`` gives every sample the same prompt; a prompt per image comes
from ``prompts_file`` (a JSON object ``{"name": "prompt"}`` or a CSV file with columns
``name,prompt``), from ``prompts=`` (a mapping ``{stem: prompt}``), or from sidecar
``<stem>.txt`` files next to the low images, which are picked up whenever one exists
(``prompts_file="sidecar"`` asks for them explicitly). Names match by file stem (``"1"``
and ``"1.png"`` both work); images without their own prompt get ``prompt`` (an error
naming them if ``prompt`` is None).

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
from .kinds import LAYOUT_DIRS, LAYOUTS, SPLITS
from .transforms import PairedTransform, sample_seed

__all__ = [
    "PairedImageFolder",
    "PairingError",
    "LAYOUTS",
    "LAYOUT_DIRS",
    "SPLITS",
    "find_pairs",
    "image_size",
    "load_prompts",
]

PathLike = str | os.PathLike

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
    return _find_pairs_sized(low_dir, high_dir, layout, check_sizes)[0]


def _find_pairs_sized(
    low_dir: PathLike, high_dir: PathLike, layout: str, check_sizes: bool
) -> tuple[list[tuple[Path, Path]], list[tuple[int, int]]]:
    """:func:`find_pairs` plus the (W, H) of every pair (empty without ``check_sizes``)."""
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
    pair_sizes: list[tuple[int, int]] = []
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
            pair_sizes.append(sizes[0] if sizes else (0, 0))
    if unpaired_low or unpaired_high or mismatches or unreadable:
        raise PairingError(low_dir, high_dir, unpaired_low, unpaired_high, mismatches, unreadable)
    return [(lows[k], highs[k]) for k in keys], pair_sizes


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
        root: dataset root (for ``generic``: the folder holding ``low/`` and ``high/``,
            or the base of relative ``low_dir``/``high_dir``).
        layout: one of :data:`LAYOUTS`.
        split: ``"train"``, or ``"test"``/``"val"`` (the same held-out folders).
        transform: a :class:`PairedTransform` (or any ``(low, high, generator) -> pair``);
            None keeps full images.
        prompt: one prompt for every sample, and the fallback of per-image prompts.
        prompts_file: per-image prompts: a JSON (``{name: prompt}``) or CSV (``name,prompt``)
            file, or ``"sidecar"`` (``<stem>.txt`` next to each low image; also picked up
            without this argument whenever one exists).
        low_dir: low-light folder, relative to ``root`` or absolute (default: the layout's).
        high_dir: normal-light folder, relative to ``root`` or absolute.
        crop: shorthand for ``transform=PairedTransform(crop)`` (random crop, flips, 90°
            rotations); checked against the smallest pair at construction.
        prompts: per-image prompts as a mapping ``{name: prompt}`` (instead of a file).
        seed: base seed of the augmentation.
        cache: keep decoded images in memory (as 8/16-bit arrays).
        check_sizes: compare the sizes of every pair at construction.

    Raises:
        FileNotFoundError: ``root`` or a layout folder is missing.
        ValueError: unknown layout or split; :class:`PairingError` (a ``ValueError``)
            listing every unpaired file, size mismatch and unreadable header; images
            without a prompt when some have one and no fallback ``prompt`` is given; a
            crop larger than an image.

    Example:
        >>> import tempfile, os, torch
        >>> from textrestore.data import write_image
        >>> root = tempfile.mkdtemp()
        >>> for sub, name in (("Train/Low", "low00007.png"), ("Train/Normal", "normal00007.png")):
        ...     os.makedirs(os.path.join(root, sub))
        ...     _ = write_image(os.path.join(root, sub, name), torch.rand(3, 8, 8))
        >>> ds = PairedImageFolder(root, layout="lol_v2_real", crop=4)
        >>> len(ds), ds[0]["name"], ds[0]["low"].shape
        (1, '00007', torch.Size([3, 4, 4]))
    """

    def __init__(
        self,
        root: PathLike,
        layout: str = "lol_v1",
        split: str = "train",
        transform: PairedTransform | Callable[..., Any] | None = None,
        prompt: str | None = None,
        prompts_file: PathLike | None = None,
        low_dir: PathLike | None = None,
        high_dir: PathLike | None = None,
        *,
        crop: int | None = None,
        prompts: Mapping[str, str] | PathLike | None = None,
        seed: int = 0,
        cache: bool = False,
        check_sizes: bool = True,
    ) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; expected one of {list(LAYOUTS)}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        if transform is not None and crop is not None:
            raise ValueError("PairedImageFolder: give either transform= or crop=, not both")
        if prompts_file is not None and prompts is not None:
            raise ValueError("PairedImageFolder: give either prompts_file= or prompts=, not both")
        if transform is not None and not callable(transform):
            raise TypeError(
                f"transform: expected a PairedTransform or callable, got {type(transform).__name__}"
            )
        self.root, self.layout, self.split = Path(root), layout, split
        if not self.root.is_dir():
            raise FileNotFoundError(f"dataset root not found: {self.root}")
        candidates = LAYOUT_DIRS[layout][SPLITS[split]]
        lo_rel, hi_rel = next(
            (c for c in candidates if (self.root / c[0]).is_dir() and (self.root / c[1]).is_dir()),
            candidates[0],
        )
        self.low_dir = self.root / (low_dir if low_dir is not None else lo_rel)
        self.high_dir = self.root / (high_dir if high_dir is not None else hi_rel)
        for d, what in ((self.low_dir, "low"), (self.high_dir, "high")):
            if not d.is_dir():
                expected = " or ".join(
                    f"{self.root / lo} and {self.root / hi}" for lo, hi in candidates
                )
                raise FileNotFoundError(
                    f"{layout} layout ({split}): {what} folder {d} not found; expected {expected}"
                )
        self.pairs, sizes = _find_pairs_sized(self.low_dir, self.high_dir, layout, check_sizes)
        self.transform = PairedTransform(crop) if crop is not None else transform
        tcrop = getattr(self.transform, "crop", None)
        if isinstance(tcrop, int) and sizes:
            small = [
                f"{lo} ({w}x{h})" for (lo, _), (w, h) in zip(self.pairs, sizes) if min(w, h) < tcrop
            ]
            if small:
                raise ValueError(
                    f"crop {tcrop}x{tcrop} is larger than {len(small)} image(s) (W x H): "
                    + ", ".join(small)
                )
        self.seed, self.epoch = int(seed), 0
        self.names = [_key(lo.stem, layout) for lo, _ in self.pairs]
        per_image = prompts_file if prompts is None else prompts
        self.prompt_list = self._resolve_prompts(prompt, per_image)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None

    def _resolve_prompts(
        self, prompt: str | None, prompts: PathLike | Mapping[str, str] | None
    ) -> list[str] | None:
        if prompt is not None and not isinstance(prompt, str):
            raise TypeError(f"prompt: expected a str, got {type(prompt).__name__}")
        sidecars = {
            name: lo.with_suffix(".txt")
            for (lo, _), name in zip(self.pairs, self.names)
            if lo.with_suffix(".txt").is_file()
        }
        explicit_sidecar = isinstance(prompts, str) and prompts == "sidecar"
        if prompts is None and not sidecars:
            return None if prompt is None else [prompt] * len(self.pairs)
        table: dict[str, str] = {}
        if prompts is None or explicit_sidecar:
            source = f"sidecar .txt files in {self.low_dir}"
            table = {n: t.read_text(encoding="utf-8").strip() for n, t in sidecars.items()}
        else:
            source = str(prompts) if not isinstance(prompts, Mapping) else "the prompts mapping"
            table = load_prompts(prompts)
        missing = [n for n in self.names if n not in table]
        if missing and prompt is None:
            raise ValueError(
                f"{len(missing)} image(s) have no prompt in {source} and no default prompt= "
                f"was given: {missing}"
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

"""``textrestore enhance``: enhance image files and folders with a text-guided model.

The command never loses a photo and never falls over:

- an output path that is an input (the same name, a symlink or hard link to it, or the
  same name in another letter case) is refused before any work, in one line;
- output names are unique and stable per input (see :func:`name_outputs`), and a
  manifest in the output folder (``.textrestore-enhance.jsonl``) records which input
  each output came from, so ``--skip-existing`` never takes one input's result for
  another's and an existing file the command did not write is never replaced without
  ``--overwrite``;
- the output folder, the device, the weights, the prompt and the formats are checked
  before the first image, one line each;
- one image that fails (unreadable, out of memory, ...) is reported and the batch goes
  on; Ctrl-C keeps the finished files, removes the partial one, prints the summary and
  exits with 130.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._args import add_device_argument, add_model_arguments, model_from_args

__all__ = [
    "register",
    "run",
    "collect_inputs",
    "find_inputs",
    "name_outputs",
    "check_outputs",
    "EnhanceSummary",
    "MANIFEST",
]

#: The output folder's record of which input each output came from (JSON lines).
MANIFEST = ".textrestore-enhance.jsonl"

DESCRIPTION = """\
Enhance low-light images. Each PATH is an image file or a folder (searched
recursively for .png .jpg .jpeg .bmp .tif .tiff .webp files; symlinked folders are
not followed). Outputs go to OUT_DIR with each file's stem and the --ext format (PNG
by default); files found in a folder keep their sub-folder under OUT_DIR. When two
inputs would get the same output name (e.g. pic.jpg and pic.png, compared ignoring
case), both keep their extension in it (pic.jpg.png, pic.png.png); when that is not
enough (the same name from two folders given together), a short hash of the input's
path is added (pic.jpg.1a2b3c4d.png).

Nothing is overwritten that should not be: an output path that is an input (also
through symlinks, hard links or another letter case) is refused before any work; an
existing file that enhance did not write (its record is the hidden file
.textrestore-enhance.jsonl in OUT_DIR) is only replaced with --overwrite.

The image size needs no option: each image runs whole when it fits the free memory,
else in overlapping tiles blended with a raised-cosine window (--tile overrides).
An unreadable or corrupt file, or one that runs out of memory, is reported and
skipped while the others are written; the exit code is 1 if any file failed, 2 for a
usage error found before the first image (nothing is written then), 130 on Ctrl-C.

By default the model is the nalsuper_ms checkpoint shipped with the package (no
download).
"""

EPILOG = """\
examples:
  textrestore enhance dark.jpg -o out/
  textrestore enhance photos/ -o out/ --skip-existing
  textrestore enhance a.png b.png -o out/ --weights my.safetensors --model nalsuper_t
  textrestore enhance huge.tif -o out/ --tile 512 --memory-gb 4
"""

_STALE_TMP = re.compile(r"^\..+\.(\d+)\.tmp(\.[A-Za-z0-9]+)?$")


@dataclass
class EnhanceSummary:
    """What one run did: written, skipped (existing) and failed files."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)
    interrupted: bool = False


class UsageError(ValueError):
    """A problem found before the first image: one line, exit code 2, nothing written."""


# -- finding inputs --------------------------------------------------------------------
@dataclass
class FoundInputs:
    """Image files with their name relative to the output folder, and what was not usable."""

    items: list[tuple[Path, Path]] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)


def _file_key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _walk(folder: Path) -> Iterable[Path]:
    """Every entry below ``folder`` that is not a folder (symlinked folders not followed)."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        base = Path(root)
        for d in dirs:
            if (base / d).is_symlink():
                yield base / d  # reported: not followed
        for name in sorted(files):
            yield base / name


def find_inputs(paths: list[Path], out_dir: Path) -> FoundInputs:
    """Image files of ``paths`` (files and folders) with their relative output names.

    Files inside ``out_dir`` (our own outputs) are left out; the same file reached twice
    (given twice, or through a symlink) is processed once and the repeat counted as
    ignored. Dangling or looping links, missing
    paths and explicit files of an unknown extension are problems; non-image files and
    hidden files in folders are ignored.
    """
    from ..data import IMAGE_EXTENSIONS, is_image_file

    found = FoundInputs()
    seen: set[str] = set()
    out_root = Path(os.path.realpath(out_dir))

    def add(f: Path, rel: Path) -> None:
        if _file_key(f) is None:
            found.problems.append((f, "broken or looping symbolic link"))
            return
        real = os.path.realpath(f)
        if real in seen:
            found.ignored.append(f)  # the same file reached twice: enhanced once
        else:
            seen.add(real)
            found.items.append((f, rel))

    for path in paths:
        if path.is_dir():
            for f in _walk(path):
                if out_root in Path(os.path.realpath(f)).parents:
                    continue  # never re-enhance our own outputs
                if f.is_symlink() and f.is_dir():
                    found.ignored.append(f)
                    continue
                if not is_image_file(f):
                    found.ignored.append(f)
                    continue
                if not f.exists():
                    found.problems.append((f, "broken or looping symbolic link"))
                    continue
                add(f, f.relative_to(path))
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                found.problems.append(
                    (path, f"not an image file: expected one of {', '.join(IMAGE_EXTENSIONS)}")
                )
                continue
            add(path, Path(path.name))
        elif path.is_symlink():
            found.problems.append((path, "broken or looping symbolic link"))
        else:
            found.problems.append((path, "no such file or folder"))
    return found


# -- naming outputs --------------------------------------------------------------------
def _short_hash(path: Path) -> str:
    return hashlib.sha1(os.fsencode(os.path.realpath(path))).hexdigest()[:8]


def _output_name(src: Path, rel: Path, ext: str, level: int) -> Path:
    if level == 0:
        name = rel.stem + ext
    elif level == 1:
        name = rel.name + ext
    else:
        name = f"{rel.name}.{_short_hash(src)}{ext}"
    return rel.parent / name


def name_outputs(
    items: list[tuple[Path, Path]], out_dir: Path, ext: str
) -> list[tuple[Path, Path]]:
    """Output path of every (input, relative name): unique, also ignoring letter case.

    ``stem + ext`` by default; every input whose name collides with another's keeps its
    extension (``pic.jpg`` -> ``pic.jpg.png``); still colliding ones (the same relative
    name from different folders) add 8 hex digits of a hash of their real path. The name
    of an input depends only on the inputs it collides with, never on the order given.
    """
    levels = [0] * len(items)
    while True:
        names = [_output_name(s, r, ext, lv) for (s, r), lv in zip(items, levels)]
        groups: dict[str, list[int]] = {}
        for i, n in enumerate(names):
            groups.setdefault(n.as_posix().casefold(), []).append(i)
        clash = [i for g in groups.values() if len(g) > 1 for i in g if levels[i] < 2]
        if not clash:
            break
        for i in clash:
            levels[i] += 1
    if any(len(g) > 1 for g in groups.values()):  # pragma: no cover - a sha1 collision
        raise UsageError("cannot give every input a distinct output name")
    return [(src, out_dir / name) for (src, _), name in zip(items, names)]


def collect_inputs(
    paths: list[Path], out_dir: Path, ext: str
) -> tuple[list[tuple[Path, Path]], list[Path], list[Path]]:
    """Plan (input, output) pairs; also return the unusable paths and non-image files."""
    found = find_inputs(paths, out_dir)
    pairs = name_outputs(found.items, out_dir, ext)
    return pairs, [p for p, _ in found.problems], found.ignored


# -- checks before working -------------------------------------------------------------
def _fold(path: Path) -> str:
    return os.path.normcase(str(path)).casefold()


def _abs(path: Path) -> Path:
    """Absolute path with the folder part resolved and the last component kept as is."""
    path = Path(os.path.abspath(path))
    return Path(os.path.realpath(path.parent)) / path.name


def check_outputs(pairs: list[tuple[Path, Path]]) -> None:
    """Raise :class:`UsageError` if an output path is, or resolves to, an input file.

    Compared: the paths as given and resolved (symlinks), ignoring letter case (a
    case-insensitive file system would make them one file), and the files themselves
    (device and inode: hard links, bind mounts, case-insensitive file systems).
    """
    names: dict[str, Path] = {}
    inodes: dict[tuple[int, int], Path] = {}
    for src, _ in pairs:
        for p in (_abs(src), Path(os.path.realpath(src))):
            names[_fold(p)] = src
        key = _file_key(src)
        if key is not None:
            inodes[key] = src
    for src, dst in pairs:
        hit = names.get(_fold(_abs(dst))) or names.get(_fold(Path(os.path.realpath(dst))))
        key = _file_key(dst) if os.path.lexists(dst) else None
        hit = hit or (inodes.get(key) if key is not None else None)
        if hit is not None:
            raise UsageError(
                f"refusing to write {dst}: it is the input {hit} (the output of {src}); "
                "choose another -o folder"
            )


def _check_out_dir(out_dir: Path) -> None:
    """Create ``out_dir`` if needed and prove that a file can be written there."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"output folder {out_dir} is an existing file; -o takes a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".textrestore-probe-", dir=out_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or str(err)
        raise UsageError(f"cannot write to the output folder {out_dir}: {reason}") from None


def _read_manifest(out_dir: Path) -> dict[str, str]:
    """Relative output path -> real path of the input it was made from (last record wins)."""
    records: dict[str, str] = {}
    try:
        text = (out_dir / MANIFEST).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return records
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line cut short by a killed run
        if isinstance(rec, dict) and isinstance(rec.get("output"), str):
            records[rec["output"]] = str(rec.get("source"))
    return records


def _record(out_dir: Path, dst: Path, src: Path) -> None:
    line = json.dumps({"output": dst.relative_to(out_dir).as_posix(), "source": _source(src)})
    with open(out_dir / MANIFEST, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def _source(src: Path) -> str:
    return os.path.realpath(src)


def _plan_existing(
    pairs: list[tuple[Path, Path]], out_dir: Path, skip_existing: bool, overwrite: bool
) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """Split the pairs into (to do, to skip); refuse to replace files enhance did not write."""
    records = _read_manifest(out_dir)
    todo: list[tuple[Path, Path]] = []
    skip: list[Path] = []
    foreign: list[Path] = []
    for src, dst in pairs:
        if not os.path.lexists(dst):
            todo.append((src, dst))
            continue
        made_from = records.get(dst.relative_to(out_dir).as_posix())
        if made_from == _source(src):
            (skip.append(dst) if skip_existing else todo.append((src, dst)))
        elif made_from is not None:
            todo.append((src, dst))  # our own output, but of another input: redo it
        elif skip_existing:
            skip.append(dst)  # not recorded (an older run): keep it
        elif overwrite:
            todo.append((src, dst))
        else:
            foreign.append(dst)
    if foreign:
        raise UsageError(
            f"{len(foreign)} output file(s) already exist that textrestore enhance did not "
            f"write (e.g. {foreign[0]}); pass --skip-existing to keep them or --overwrite "
            "to replace them"
        )
    return todo, skip


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _clean_stale_tmp(folders: Iterable[Path]) -> int:
    """Remove the temporary files of killed writes (``.name.<pid>.tmp.ext``, pid gone)."""
    removed = 0
    for folder in folders:
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for f in entries:
            m = _STALE_TMP.match(f.name)
            if m and f.is_file() and not _pid_alive(int(m.group(1))):
                try:
                    f.unlink()
                    removed += 1
                except OSError:
                    pass
    return removed


# -- per-file errors -------------------------------------------------------------------
def _is_out_of_memory(err: BaseException) -> bool:
    if isinstance(err, MemoryError):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text
    )


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 400 else text[:397] + "..."


def _describe_failure(err: BaseException) -> str:
    if _is_out_of_memory(err):
        return (
            "out of memory; try --tile 512 (or smaller) or a lower --memory-gb "
            f"({_one_line(err)[:120]})"
        )
    if isinstance(err, (ValueError, FileNotFoundError, OSError, TypeError)):
        return _one_line(err)
    return f"unexpected {type(err).__name__}: {_one_line(err)}"


# -- options ---------------------------------------------------------------------------
def _parse_tile(value: str) -> int | str:
    if value in ("auto", "whole"):
        return value
    try:
        tile = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an int, 'auto' or 'whole', got {value!r}"
        ) from None
    if tile < 8:
        raise argparse.ArgumentTypeError(f"tile must be >= 8 pixels, got {tile}")
    return tile


def _parse_overlap(value: str) -> int:
    try:
        overlap = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels, got {value!r}") from None
    if overlap < 0:
        raise argparse.ArgumentTypeError(f"overlap must be >= 0 pixels, got {overlap}")
    return overlap


def _parse_memory_gb(value: str) -> float:
    try:
        gb = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of GiB, got {value!r}") from None
    if not gb > 0 or gb == float("inf"):
        raise argparse.ArgumentTypeError(f"the memory budget must be > 0 GiB, got {value}")
    return gb


def _parse_ext(value: str) -> str:
    from ..data import IMAGE_EXTENSIONS

    ext = "." + value.lower().lstrip(".")
    if ext not in IMAGE_EXTENSIONS:
        raise argparse.ArgumentTypeError(
            f"unknown image extension {value!r}; expected one of {', '.join(IMAGE_EXTENSIONS)}"
        )
    return ext


# -- the command -----------------------------------------------------------------------
def _prepare(
    args: argparse.Namespace, summary: EnhanceSummary
) -> tuple[list[tuple[Path, Path]], Any]:
    """Every check before the first image; returns (pairs to do, model). Raises UsageError."""
    from ..inference import _check_args, _ensure_prompt, _resolve_device

    out_dir: Path = args.output
    try:
        _check_args(args.tile, args.overlap, 4)
        _resolve_device(args.device)
    except (ValueError, TypeError) as err:
        raise UsageError(str(err).removeprefix("enhance: ")) from None
    found = find_inputs([Path(p) for p in args.paths], out_dir)
    summary.ignored = found.ignored
    summary.failed.extend(found.problems)
    if not found.items and not found.problems:
        raise UsageError("no image files found in the given paths")
    pairs = name_outputs(found.items, out_dir, args.ext)
    check_outputs(pairs)
    _check_out_dir(out_dir)
    todo, skipped = _plan_existing(pairs, out_dir, args.skip_existing, args.overwrite)
    summary.skipped.extend(skipped)
    _clean_stale_tmp({dst.parent for _, dst in todo} | {out_dir})
    try:
        model = model_from_args(args)
    except Exception as err:  # every loading problem is one line (details in the message)
        raise UsageError(f"cannot load the model: {_one_line(err)}") from None
    try:
        _ensure_prompt(model, args.prompt)
    except ValueError as err:
        raise UsageError(str(err).removeprefix("enhance: ")) from None
    return todo, model


def _enhance_one(src: Path, dst: Path, model: Any, args: argparse.Namespace) -> None:
    from ..data import read_image_array, write_image
    from ..data.image_io import read_image_metadata
    from ..inference import enhance

    image = read_image_array(src)
    out = enhance(
        image,
        model=model,
        prompt=args.prompt,
        tile=args.tile,
        memory_budget=None if args.memory_gb is None else int(args.memory_gb * 2**30),
        overlap=args.overlap,
        device=args.device,
        amp={"auto": None, "fp32": False, "bf16": True}[args.precision],
        progress=False if args.quiet else None,
    )
    del image
    # 16-bit in, 16-bit out (PNG, TIFF); EXIF and ICC profile kept; atomic
    write_image(dst, out, bit_depth=None, metadata=read_image_metadata(src))


def _print_summary(summary: EnhanceSummary, out_dir: Path, elapsed: float, total: int) -> None:
    head = "interrupted: " if summary.interrupted else ""
    print(
        f"{head}enhanced {len(summary.written)}, skipped {len(summary.skipped)} existing, "
        f"failed {len(summary.failed)} in {elapsed:.1f}s -> {out_dir}"
    )
    if summary.interrupted:
        done = len(summary.written) + len(summary.skipped) + len(summary.failed)
        print(f"stopped by Ctrl-C after {done} of {total} input(s); finished files are kept")
    if summary.ignored:
        print(f"ignored {len(summary.ignored)} non-image file(s) or linked folder(s) in folders")
    for path, reason in summary.failed:
        print(f"  FAILED {path}: {reason}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run ``textrestore enhance`` with parsed ``args``; returns the exit code."""
    from tqdm import tqdm

    out_dir: Path = args.output
    summary = EnhanceSummary()
    start = time.perf_counter()
    try:
        todo, model = _prepare(args, summary)
    except UsageError as err:
        print(f"textrestore enhance: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("textrestore enhance: interrupted before the first image", file=sys.stderr)
        return 130
    total = len(todo) + len(summary.skipped) + len(summary.failed)
    bar = tqdm(todo, desc="enhance", unit="img", disable=args.quiet or None, file=sys.stderr)
    try:
        for src, dst in bar:
            try:
                _enhance_one(src, dst, model, args)
            except KeyboardInterrupt:
                raise
            except Exception as err:  # one image never stops the batch
                summary.failed.append((src, _describe_failure(err)))
                tqdm.write(f"failed: {src}: {summary.failed[-1][1]}", file=sys.stderr)
                continue
            summary.written.append(dst)
            try:
                _record(out_dir, dst, src)
            except OSError as err:  # the image is written; only its record is missing
                tqdm.write(f"warning: cannot record {dst} in {MANIFEST}: {err}", file=sys.stderr)
    except KeyboardInterrupt:
        summary.interrupted = True  # the partial file's temporary was removed by atomic_path
    finally:
        bar.close()
    _print_summary(summary, out_dir, time.perf_counter() - start, total)
    if summary.interrupted:
        return 130
    return 1 if summary.failed else 0


def register(subparsers: Any) -> None:
    """Add the ``enhance`` subcommand."""
    p = subparsers.add_parser(
        "enhance",
        help="enhance low-light image files and folders",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files and/or folders")
    p.add_argument(
        "-o", "--output", type=Path, default=Path("enhanced"), metavar="OUT_DIR",
        help="output folder, created if needed (default: ./enhanced); never an input's folder "
        "entry: an output that would replace an input is refused",
    )  # fmt: skip
    add_model_arguments(p)
    p.add_argument(
        "--prompt", metavar="TEXT", default=None,
        help="text prompt (default: the model's prompt, 'normal light image'); a new prompt "
        "needs the model's text encoder installed",
    )  # fmt: skip
    p.add_argument(
        "--tile", type=_parse_tile, default=None, metavar="N|auto|whole",
        help="default (auto): whole image when it fits the free memory, else tiles of at "
        "least 256 px; N: N x N tiles; whole: never tile",
    )  # fmt: skip
    p.add_argument(
        "--memory-gb", type=_parse_memory_gb, default=None, metavar="GB",
        help="memory budget of the automatic choice in GiB: on CPU the bound on the "
        "process's resident memory, on CUDA on activations (default: on CPU 1.5 GiB of "
        "activations, at most half the available memory; on CUDA half the free memory)",
    )  # fmt: skip
    p.add_argument(
        "--overlap", type=_parse_overlap, default=32, metavar="PX",
        help="overlap of neighbouring tiles in pixels (default: 32)",
    )  # fmt: skip
    add_device_argument(p)
    p.add_argument(
        "--precision", choices=["auto", "fp32", "bf16"], default="auto",
        help="auto (default): bfloat16 on CUDA (float16 without bf16) and on CPUs that "
        "compute bfloat16 natively, float32 elsewhere; fp32: float32 everywhere; bf16: "
        "bfloat16 on any device (float16 on GPUs without bfloat16)",
    )  # fmt: skip
    p.add_argument(
        "--skip-existing", action="store_true",
        help="do not redo files whose output exists (an output recorded for another input "
        "is redone)",
    )  # fmt: skip
    p.add_argument(
        "--overwrite", action="store_true",
        help="replace existing output files that enhance did not write (never an input)",
    )  # fmt: skip
    p.add_argument(
        "--ext", type=_parse_ext, default=".png", metavar="EXT",
        help="output format by extension: png (default), jpg, webp, tif, ...",
    )  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)

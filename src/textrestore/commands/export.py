"""``textrestore export``: ONNX / TorchScript / ExportedProgram with the prompt baked in."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._args import add_model_arguments, model_from_args

if TYPE_CHECKING:
    import torch

#: The formats of :data:`textrestore.export.FORMATS` (repeated so that building the
#: parser does not import torch; a test checks they agree).
_FORMATS = ("onnx", "torchscript", "exported-program")

__all__ = ["register", "run", "verify_export"]

DESCRIPTION = """\
Export a model with its prompt embedding baked in, so that the exported file runs
with no text encoder. Input: image (1, 3, H, W) float32 in [0, 1] with dynamic H and
W (TorchScript: any batch); output: the enhanced image, same shape, not clipped.
After writing, the file is loaded back and compared with PyTorch on a 64x96 and a
37x53 input (max abs diff must be <= --tolerance, else exit code 1).

ONNX needs the export extra: pip install 'textrestore[export]'.
"""

EPILOG = """\
examples:
  textrestore export --format onnx -o nalsuper_ms.onnx
  textrestore export --weights my.safetensors --model nalsuper_t --format torchscript -o m.pt
"""


def verify_export(
    model: torch.nn.Module, path: Path, prompt: str | None = None
) -> dict[str, float]:
    """Max abs difference between the exported file and PyTorch on 64x96 and 37x53 inputs."""
    import torch

    from ..export import BakedPromptModel, load_exported

    ref = BakedPromptModel(model, prompt=prompt).eval()
    fn = load_exported(path)
    gen = torch.Generator().manual_seed(0)
    diffs = {}
    for h, w in ((64, 96), (37, 53)):
        x = torch.rand(1, 3, h, w, generator=gen)
        with torch.no_grad():
            diffs[f"{h}x{w}"] = float((fn(x) - ref(x)).abs().max())
    return diffs


#: Output suffixes each format is loaded back by (``textrestore.export.load_exported``
#: picks the loader from the suffix).
_SUFFIXES = {
    "onnx": (".onnx",),
    "torchscript": (".pt", ".pth", ".ts"),
    "exported-program": (".pt2",),
}


def check_output(path: Path, fmt: str) -> None:
    """``ValueError`` unless ``path``'s suffix is one that ``fmt`` is written (and read) as."""
    allowed = _SUFFIXES.get(fmt, ())
    if path.suffix.lower() in allowed:
        if path.is_dir():
            raise ValueError(f"-o {path} is a folder; give a file name ending in {allowed[0]}")
        return
    owner = next((f for f, sfx in _SUFFIXES.items() if path.suffix.lower() in sfx), None)
    hint = f" (that suffix is --format {owner})" if owner else ""
    raise ValueError(
        f"-o {path}: --format {fmt} is written as {' or '.join(allowed)}, got "
        f"{path.suffix or 'no suffix'!r}{hint}; e.g. -o {path.with_suffix(allowed[0]).name}"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``textrestore export`` with parsed ``args``; returns the exit code."""
    from ..export import export_model
    from ..inference import _ensure_prompt

    try:
        check_output(args.output, args.format)
        model = model_from_args(args)
        _ensure_prompt(model, args.prompt)
        path = export_model(model, args.output, args.format, prompt=args.prompt, opset=args.opset)
    except (ValueError, FileNotFoundError, TypeError, ImportError) as err:
        print(f"textrestore export: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, format {args.format})")
    if args.no_verify:
        return 0
    try:
        diffs = verify_export(model, path, args.prompt)
    except (ValueError, RuntimeError, ImportError, OSError) as err:
        message = " ".join(str(err).split())[:300]
        print(f"textrestore export: cannot verify {path}: {message}", file=sys.stderr)
        return 1
    worst = max(diffs.values())
    print("max abs diff vs PyTorch: " + ", ".join(f"{k}: {v:.2e}" for k, v in diffs.items()))
    if worst > args.tolerance:
        print(f"textrestore export: difference {worst:.2e} > {args.tolerance}", file=sys.stderr)
        return 1
    return 0


def register(subparsers: Any) -> None:
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export",
        help="export to ONNX / TorchScript / ExportedProgram with the prompt baked in",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(p)
    p.add_argument(
        "--format", choices=_FORMATS, default="onnx",
        help="onnx (.onnx), torchscript (.pt) or exported-program (.pt2); default: onnx",
    )  # fmt: skip
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="output file")
    p.add_argument(
        "--prompt", metavar="TEXT", default=None,
        help="prompt to bake in (default: the model's prompt, 'normal light image')",
    )  # fmt: skip
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default: 18)")
    p.add_argument(
        "--tolerance", type=float, default=1e-4,
        help="largest accepted max abs difference from PyTorch (default: 1e-4)",
    )  # fmt: skip
    p.add_argument("--no-verify", action="store_true", help="skip the comparison with PyTorch")
    p.set_defaults(func=run)

"""The ``textrestore`` command.

Each subcommand lives in the module that owns its work; that module exposes
``register(subparsers)`` which adds its parser(s) with ``set_defaults(func=...)``,
where ``func(args) -> int`` returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from ._version import __version__

__all__ = ["main", "console", "build_parser"]

# Modules that contribute subcommands, in the order they appear in --help.
_COMMAND_MODULES: tuple[str, ...] = (
    "textrestore.commands.demo",
    "textrestore.commands.enhance",
    "textrestore.commands.models",
    "textrestore.commands.export",
    "textrestore.commands.quality",
    "textrestore.commands.train",
    "textrestore.commands.app",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="textrestore",
        description="Text-guided image restoration (NaLSuper, arXiv 2501.06546).",
    )
    parser.add_argument("--version", action="version", version=f"textrestore {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


#: Errors that a user's file or option causes: one line and exit code 2, no traceback
#: (set ``TEXTRESTORE_DEBUG=1`` to see it). Anything else is a bug and keeps its traceback.
_USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, OSError, ImportError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code.

    A subcommand reports its own errors; what escapes it as a user error (a bad option
    value, file or config) is printed as one line with exit code 2, and Ctrl-C prints one
    line with exit code 130.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    name = f"{parser.prog} {args.command}"
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except _USER_ERRORS as err:
        if os.environ.get("TEXTRESTORE_DEBUG"):
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"{name}: {message}", file=sys.stderr)
        return 2


def console() -> int:
    """The ``textrestore`` executable: :func:`main` in a process of its own.

    The process only runs the model, so it first lets glibc keep freed memory for reuse
    (:func:`textrestore.allocator.keep_freed_memory`: no page faults on every block's
    buffers, about 20% off a paper-size forward). Calling :func:`main` from your own
    program leaves your allocator alone.
    """
    from .allocator import keep_freed_memory

    keep_freed_memory()
    return main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(console())

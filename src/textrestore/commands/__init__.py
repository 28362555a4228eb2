"""Subcommands of the ``textrestore`` command that sit on top of inference.

- ``enhance``: enhance image files and folders (:mod:`textrestore.commands.enhance`),
- ``demo``: degrade, enhance and score the bundled sample photos (:mod:`textrestore.commands.demo`),
- ``export``: ONNX / TorchScript / ExportedProgram with the prompt baked in
  (:mod:`textrestore.commands.export`).

Each module exposes ``register(subparsers)``; see :mod:`textrestore.cli`.
"""

from __future__ import annotations

__all__: list[str] = []

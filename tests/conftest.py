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


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A ``nalsuper_t`` safetensors file (random weights, the default prompt stored)."""
    from safetensors.torch import save_file

    from textrestore import create_model
    from textrestore.text import TextEmbedding

    model = create_model("nalsuper_t")
    emb = TextEmbedding(
        torch.randn(1, 4, 384), torch.ones(1, 4, dtype=torch.bool), torch.zeros(1, 384)
    )
    model.prompt_bank.add("normal light image", emb)
    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), {"preset": "nalsuper_t"})
    return str(path)


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

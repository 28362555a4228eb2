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

"""The load tool for the benchmark smoke tests, built on demand (as on a fresh machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.install import ensure_vegeta
from tools.ensure_tool import ToolError


@pytest.fixture(scope="session")
def vegeta() -> Path:
    try:
        return ensure_vegeta().path
    except ToolError as exc:
        pytest.fail(f"the load tool could not be built:\n{exc}", pytrace=False)

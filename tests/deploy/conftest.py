"""Fixtures of the deployment checks: the real helm and promtool, and rendered scenarios.

The binaries are built from their Go modules on first use (tools/ensure_tool.py) and reused
from .cache/bin afterwards. A cold build takes minutes, so tests that need a tool get a
longer timeout than the suite's default.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.ensure_tool import ensure

from .chart import CASES, Manifest, render

# Covers a cold `go install` of helm (about 2.5 min on 2 cores) or promtool.
TOOL_BUILD_TIMEOUT_S = 1500
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The hook sees the whole session's items; mark only this directory's.
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if item.path.is_relative_to(HERE) and {"helm", "promtool", "rendered"} & set(fixtures):
            item.add_marker(pytest.mark.timeout(TOOL_BUILD_TIMEOUT_S))


@pytest.fixture(scope="session")
def helm() -> Path:
    return ensure("helm")


@pytest.fixture(scope="session")
def promtool() -> Path:
    return ensure("promtool")


@pytest.fixture(scope="session")
def rendered(helm: Path) -> dict[str, list[Manifest]]:
    """Every case of chart.CASES rendered once: case name -> manifests."""
    return {name: render(helm, scenario, *sets) for name, (scenario, sets) in CASES.items()}

"""The README tells the truth about what the code does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.cli import build_parser
from gateway.commands.settings_doc import refresh
from gateway.settings import Settings
from schemas.oc_status import OC_ORDER_STATUSES

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_the_generated_tables_are_current() -> None:
    assert refresh(README) == README, "README.md's generated tables are stale: run `make generate`"
    for name in Settings.model_fields:
        assert f"`GATEWAY_{name.upper()}`" in README


def test_every_setting_has_a_description() -> None:
    missing = [n for n, f in Settings.model_fields.items() if not (f.description or "").strip()]
    assert missing == []


def test_the_quick_start_has_exactly_two_commands_and_ci_runs_one_of_them() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", quick_start, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["make run", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


@pytest.mark.parametrize(
    "command",
    [
        "serve",
        "events tail",
        "dlq list",
        "dlq redrive",
        "replay",
        "reconcile",
        "settings",
        "simulate serve",
        "oc login",
        "oc check",
    ],
)
def test_the_commands_the_readme_names_exist(command: str) -> None:
    assert f"gateway {command}" in README
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*command.split(), "--help"])
    assert exit_.value.code == 0


def test_the_event_contract_lists_what_each_oc_order_status_becomes() -> None:
    table = README.split("<!-- oc-order-statuses:begin -->", 1)[1].split("<!-- oc-order", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| `([a-z_]+)` \|$", table, re.M)
    assert rows == list(OC_ORDER_STATUSES.items())

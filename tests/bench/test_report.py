"""The fault summary says what the gateway's log held and where duplicated events are."""

from __future__ import annotations

from typing import Any

from bench import report


def scenario(**extra: Any) -> dict[str, Any]:
    audit = {
        "accepted": 100,
        "present": 100,
        "missing": 0,
        "duplicates": 0,
        "duplicates_raw": 0,
        "not_enriched": 0,
        "follow_ups": 0,
    }
    return {"log": "kafka", "rate": 100, "audit": audit, "recovery_s": {}, **extra}


def faults(**scenarios: dict[str, Any]) -> dict[str, Any]:
    return {"generated_at": "t", "machine": {"git_commit": "abc1234"}, "scenarios": scenarios}


def test_each_run_shows_its_gateway_log_findings_or_a_dash_for_older_runs() -> None:
    text = report.summary(
        {
            "faults": faults(
                new=scenario(gateway_log={"unclosed": 2, "error_lines": 7}),
                old=scenario(),
            )
        }
    )
    rows = {
        line.split(" |")[0].lstrip("| "): line for line in text.splitlines() if "(kafka)" in line
    }
    assert "| 2 / 7 |" in rows["new (kafka)"]
    assert "| - |" in rows["old (kafka)"]
    assert "seen more than once" not in text


def test_duplicated_events_are_listed_with_where_each_copy_is() -> None:
    copy = {
        "ce_id": "e-1",
        "ce_type": "com.example.status_changed",
        "topic": "t.v1",
        "copies": [{"at_s": 1.25, "where": "3@17"}, {"at_s": 9.5, "where": "3@40"}],
    }
    text = report.summary({"faults": faults(churn=scenario(duplicates_seen=[copy]))})
    assert "- churn: `com.example.status_changed` e-1 on t.v1: 3@17 at 1.2 s, 3@40 at 9.5 s" in (
        text
    )

"""The fault summary says what the gateway's log held and where duplicated events are."""

from __future__ import annotations

from typing import Any

import pytest

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


def _mode(saturation: float) -> dict[str, Any]:
    step = {
        "offered_rate": 0,
        "ok_per_s": saturation,
        "ack_latency_ms": {"p99": 5.0},
        "e2e_latency_ms": {"count": 0, "p99": 0.0},
        "oc_calls_per_1000": 0.0,
        "cpu_s_per_1000": 0.2,
        "rss_peak_bytes": 2**26,
    }
    return {"rates": [step], "saturation": step, "peak_rss_bytes": 2**26}


def _interleaved(gateway: float, bare: float) -> dict[str, Any]:
    return {
        "mode": "kafka-ingest",
        "rounds": 3,
        "seconds": 15.0,
        "results": {
            "gateway": {
                "saturation_per_s": [gateway] * 3,
                "median_per_s": gateway,
                "share_of_bare_median": round(gateway / bare, 3),
            },
            "bare-starlette": {
                "saturation_per_s": [bare] * 3,
                "median_per_s": bare,
                "share_of_bare_median": 1.0,
            },
        },
    }


@pytest.mark.parametrize(
    ("interleaved", "share", "one_shot"),
    [
        # No interleaved measurement (older runs): the saturation step against the bare
        # reference of the run.
        (None, 0.3, None),
        # Measured side by side: that share is the headline's, the other kept beside it.
        (_interleaved(4_000.0, 10_000.0), 0.4, 0.3),
    ],
)
def test_the_ingest_share_is_the_interleaved_one_when_the_run_measured_it(
    interleaved: dict[str, Any] | None, share: float, one_shot: float | None
) -> None:
    references: dict[str, Any] = {"bare_starlette": {"saturation": {"ok_per_s": 20_000.0}}}
    if interleaved is not None:
        references["interleaved_share"] = interleaved
    section = {"modes": {"kafka-ingest": _mode(6_000.0)}, "references": references}
    found = report.headline(section)["kafka-ingest"]
    assert found["share_of_http_ceiling"] == share
    assert found.get("share_of_http_ceiling_one_shot") == one_shot

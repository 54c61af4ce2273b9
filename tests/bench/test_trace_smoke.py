"""A smoke run of `python -m bench trace`: the harness fills topics, traces its two orders
through the real CLI and gets their stories right (no timing is asserted)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bench import report
from bench import trace as trace_bench
from tools.kafka_broker import Broker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def test_trace_bench_smoke(tmp_path: Path, kafka_broker: Broker) -> None:
    plan = trace_bench.Plan(
        records=3_000,
        partitions=3,
        distinct=300,
        repeats=1,
        topic_suffix=uuid.uuid4().hex[:8],
        settle_timeout_s=10.0,
    )
    section = await trace_bench.run(plan, tmp_path / "run", broker=kafka_broker)
    section = {**section, "generated_at": "now", "machine": {"shared_with_other_work": True}}
    results = report.update(tmp_path / "results", "trace", section)

    assert section["filled"]["raw_records"] == 3_000 + 10  # the two orders' deliveries
    for name in ("found", "lost"):
        run = section["traces"][name]
        assert run["correct"], run
        assert run["wall_s"]["median"] > 0
    assert len(section["traces"]["lost"]["problems"]) == 1
    assert report.failures(section, "trace") == []
    assert "trace" in results
    assert "`gateway trace`" in (tmp_path / "results" / "summary.md").read_text()

"""Smoke runs of the benchmark and of one fault run, so the harness keeps working.

They check that the harness produced well-formed results and that the audit found
nothing missing and nothing duplicated; they assert no timings (benchmarks are not tests).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import benchmark, faults, report
from bench.churn import ChurnPlan, run_churn
from tools.kafka_broker import Broker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

_PLAN = benchmark.Plan(
    rates=(100,),
    step_s=3.0,
    saturation_s=2.0,
    saturation_workers=8,
    bare_step_s=1.0,
    warmup_rate=50,
    warmup_s=1.0,
    producer_perf_records=2_000,
    broker_warmup_records=2_000,
    catch_up_timeout_s=60.0,
    overload_factors=(2,),
    overload_s=2.0,
    backlog_callbacks=300,
    backlog_rate=150,
    share_rounds=1,
)


def _well_formed_step(step: dict[str, object]) -> None:
    assert step["missing"] == 0
    assert step["duplicates"] == 0
    assert step["caught_up"] is True
    ack = step["ack_latency_ms"]
    assert isinstance(ack, dict)
    assert ack["count"] > 0
    e2e = step["e2e_latency_ms"]
    assert isinstance(e2e, dict)
    # Callbacks whose change reconciliation published first have no event of their own.
    assert e2e["count"] + step["reconciled"] == ack["count"]
    assert isinstance(step["oc_calls_per_1000"], float)
    assert isinstance(step["cpu_s_per_1000"], float)
    stages = step["processor_stages_ms"]
    assert isinstance(stages, dict)
    # Every step of a mode with a processor saw its batches go through every stage.
    assert set(stages) == {"queued", "enrich", "build", "commit"}, stages


async def test_benchmark_smoke(tmp_path: Path, vegeta: Path, kafka_broker: Broker) -> None:
    section = await benchmark.run(_PLAN, tmp_path / "run", vegeta, broker=kafka_broker)
    results = report.update(tmp_path / "results", "benchmark", {**_header(), **section})

    for mode in ("kafka", "embedded"):
        figures = section["modes"][mode]
        for step in [*figures["rates"], figures["saturation"]]:
            _well_formed_step(step)
        assert figures["peak_rss_bytes"] > 0
    [overload] = section["overload"]  # the kafka mode, offered twice its capacity
    assert overload["mode"] == "kafka"
    assert overload["offered_per_s"] == max(1, round(2 * overload["capacity_per_s"]))
    assert (overload["missing"], overload["duplicates"]) == (0, 0)
    assert set(overload) >= {"goodput_per_s", "accepted_ack_p99_ms", "refused_p99_ms"}
    assert overload["sender_max_in_flight"] == _PLAN.overload_max_in_flight
    assert overload["sent_per_s"] > 0
    assert "requests in flight" in report.summary(results)
    backlog = section["backlog"]
    assert backlog["accepted"] == 300
    assert backlog["drained"] is True
    assert (backlog["missing"], backlog["duplicates"]) == (0, 0)
    assert backlog["drained_per_s"] > 0
    assert sum(backlog["enrichment"].values()) == 300
    assert "### Backlog" in report.summary(results)
    refs = section["references"]
    assert refs["bare_starlette"]["saturation"]["ok_per_s"] > 0
    assert refs["kafka_producer_perf"]["records_per_s"] > 0
    interleaved = refs["interleaved_share"]["results"]
    assert interleaved[benchmark.GATEWAY_TREE]["median_per_s"] > 0
    assert interleaved["bare-starlette"]["median_per_s"] > 0
    assert "measured one after the other" in report.summary(results)
    assert set(results["benchmark"]["headline"]) == {"kafka", "embedded"}
    assert report.failures(section, "benchmark") == []
    written = json.loads((tmp_path / "results" / "results.json").read_text())
    assert written["benchmark"]["payload_bytes"]["mean"] > 0
    assert (tmp_path / "results" / "latency-vs-rate.png").stat().st_size > 0
    assert "## Benchmark" in (tmp_path / "results" / "summary.md").read_text()


async def test_fault_run_smoke(tmp_path: Path, vegeta: Path, kafka_broker: Broker) -> None:
    section = await faults.run(
        ["gateway-sigkill"], tmp_path / "run", vegeta, quick=True, broker=kafka_broker
    )
    report.update(tmp_path / "results", "faults", {**_header(), **section})

    run = section["scenarios"]["gateway-sigkill"]
    audit = run["audit"]
    assert audit["accepted"] > 0
    assert audit["missing"] == 0
    assert audit["missing_raw"] == 0
    assert audit["duplicates"] == 0
    # Reconciliation may publish a change before its callback arrives; the callback is
    # then rightly dropped as the same change, and counted apart.
    assert audit["present"] + audit["reconciled"] == audit["accepted"]
    assert run["settled"] is True
    assert {"gateway killed", "gateway ready"} <= set(run["marks"])
    assert sum(run["per_second"]["accepted"]) == audit["accepted"]
    assert (tmp_path / "results" / "fault-gateway-sigkill.png").stat().st_size > 0
    assert report.failures(section, "faults") == []


async def test_churn_run_smoke(tmp_path: Path, vegeta: Path, kafka_broker: Broker) -> None:
    plan = ChurnPlan(rate=50, seconds=40.0, replicas=2, settle_timeout_s=120.0)
    run = await run_churn(plan, tmp_path / "run", vegeta, kafka_broker)
    section = {**_header(), "scenarios": {"churn": run}, "quick": True}
    report.update(tmp_path / "results", "faults", section)

    audit = run["audit"]
    assert audit["accepted"] > 0
    assert audit["present"] + audit["reconciled"] == audit["accepted"]
    assert audit["order_checked"] > 0
    assert run["settled"] is True
    # Two first replicas, two from the rolling restart, one from the scale-up.
    assert [r["name"] for r in run["replicas"]] == ["r1", "r2", "r3", "r4", "r5"]
    assert sum(r["restarts"] for r in run["replicas"]) == 1  # the SIGKILLed one
    assert len(run["final_replicas"]) == 1
    for replica in run["replicas"]:
        assert replica["samples"] > 0
        assert replica["fds"]["last"] is not None
    assert sum(run["balancer"]["connections"].values()) >= audit["accepted"]
    assert {"rolling restart", "restart done", "scaled to 3", "scaled to 1"} <= set(run["marks"])
    assert (tmp_path / "results" / "fault-churn.png").stat().st_size > 0
    assert "### churn: the replicas" in (tmp_path / "results" / "summary.md").read_text()
    assert report.failures(section, "faults") == []


def _header() -> dict[str, object]:
    return {
        "generated_at": "smoke",
        "machine": {"cpus": 2, "cpu_model": "test", "memory_bytes": 2**30, "git_commit": "x"},
        "load_tool": {"name": "vegeta", "version": "test"},
    }

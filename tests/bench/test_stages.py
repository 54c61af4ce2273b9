"""The bench's batch-stage figures from the gateway's stage histogram."""

from __future__ import annotations

import math

import pytest

from bench.stages import during, parse, quantile
from gateway.ops.metrics import Metrics


def test_parse_adds_up_series_of_a_stage_and_ignores_other_metrics() -> None:
    text = "\n".join(
        [
            'gateway_processor_stage_duration_seconds_bucket{le="0.1",stage="enrich"} 2.0',
            'gateway_processor_stage_duration_seconds_bucket{le="+Inf",stage="enrich"} 3.0',
            'gateway_processor_stage_duration_seconds_bucket{le="0.1",pid="7",stage="enrich"} 1.0',
            'gateway_processor_stage_duration_seconds_count{stage="enrich"} 3.0',
            'gateway_ack_duration_seconds_bucket{le="0.1"} 9.0',
        ]
    )
    assert parse(text) == {"enrich": {0.1: 3.0, math.inf: 3.0}}


def test_parse_reads_what_the_gateway_exports() -> None:
    metrics = Metrics()
    metrics.processor_stage.labels("commit").observe(0.03)
    metrics.processor_stage.labels("commit").observe(0.3)
    found = parse(metrics.exposition().decode())
    assert set(found) == {"commit"}
    assert found["commit"][math.inf] == 2.0
    assert found["commit"][0.05] == 1.0


@pytest.mark.parametrize(
    ("q", "cumulative", "expected"),
    [
        (0.5, {0.1: 10.0, 0.2: 20.0, math.inf: 20.0}, 0.1),  # the bound where rank lands
        (0.75, {0.1: 10.0, 0.2: 20.0, math.inf: 20.0}, 0.15),  # linear within the bucket
        (0.25, {0.1: 10.0, math.inf: 10.0}, 0.025),  # the first bucket from zero
        (0.99, {0.1: 1.0, 0.2: 1.0, math.inf: 10.0}, 0.2),  # +Inf: the highest bound
        (0.5, {0.1: 0.0, math.inf: 0.0}, math.nan),
        (0.5, {}, math.nan),
    ],
)
def test_quantile_reads_like_prometheus_histogram_quantile(
    q: float, cumulative: dict[float, float], expected: float
) -> None:
    found = quantile(q, cumulative)
    assert (math.isnan(found) and math.isnan(expected)) or found == pytest.approx(expected)


def test_during_is_the_interval_between_two_scrapes() -> None:
    before = {"commit": {0.05: 100.0, 0.1: 100.0, math.inf: 100.0}}
    after = {
        "commit": {0.05: 100.0, 0.1: 200.0, math.inf: 200.0},
        "build": {0.01: 4.0, math.inf: 4.0},
    }
    figures = during(before, after)
    assert figures["commit"] == {"batches": 100.0, "p50_ms": 75.0, "p99_ms": 99.5}
    assert figures["build"]["batches"] == 4.0
    assert "queued" not in figures  # no batches: no figures

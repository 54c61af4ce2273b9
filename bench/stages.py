"""Where the processor's batches spent their time during one step, from the gateway's
own `gateway_processor_stage_duration_seconds` histogram (scraped before and after the
step; the difference is the step's).

Quantiles are estimated as Prometheus' `histogram_quantile` does: linearly within the
bucket the rank falls in (the lowest bucket from zero). A rank in the `+Inf` bucket
reads as the highest finite bound.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Final

import httpx
from prometheus_client.parser import text_string_to_metric_families

STAGES: Final = ("queued", "enrich", "build", "commit")
_BUCKET: Final = "gateway_processor_stage_duration_seconds_bucket"

Buckets = dict[str, dict[float, float]]
"""stage -> upper bound (s) -> cumulative count."""


def parse(*expositions: str) -> Buckets:
    """The stage histogram's cumulative bucket counts in /metrics texts, added up over
    every series of a stage (the processes of a mode, and their pids in one text)."""
    found: Buckets = {}
    for exposition in expositions:
        for family in text_string_to_metric_families(exposition):
            for sample in family.samples:
                stage, le = sample.labels.get("stage"), sample.labels.get("le")
                if sample.name != _BUCKET or stage is None or le is None:
                    continue
                per_stage = found.setdefault(stage, {})
                bound = float(le)  # "+Inf" reads as math.inf
                per_stage[bound] = per_stage.get(bound, 0.0) + sample.value
    return found


def quantile(q: float, cumulative: Mapping[float, float]) -> float:
    """`histogram_quantile(q, ...)` over one histogram's cumulative counts (NaN if empty)."""
    bounds = sorted(cumulative)
    if not bounds or cumulative[bounds[-1]] <= 0:
        return math.nan
    rank = q * cumulative[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def during(before: Buckets, after: Buckets) -> dict[str, dict[str, float]]:
    """Per stage, the batches of the interval and their p50 / p99 in ms."""
    figures: dict[str, dict[str, float]] = {}
    for stage in STAGES:
        then = before.get(stage, {})
        now = after.get(stage, {})
        delta = {bound: count - then.get(bound, 0.0) for bound, count in now.items()}
        batches = max(delta.values(), default=0.0)
        if batches <= 0:
            continue
        figures[stage] = {
            "batches": batches,
            "p50_ms": round(quantile(0.5, delta) * 1000, 1),
            "p99_ms": round(quantile(0.99, delta) * 1000, 1),
        }
    return figures


async def scrape(client: httpx.AsyncClient, urls: Iterable[str]) -> Buckets:
    """The stage histograms of every gateway process of a mode, added up."""
    return parse(*[(await client.get(url, timeout=10)).text for url in urls])

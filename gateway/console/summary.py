"""The console's counters, read from this process's metrics registry (pure).

The same numbers /metrics exports, summed over the labels a person does not need at a
glance. They are this process's since it started: with several replicas, each console
shows its own replica (the DLQ and quarantine lists and traces read the log: all of it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Gauge

from gateway.log.base import LogRecord
from gateway.ops.metrics import Metrics
from gateway.ops.recent import RecentDeliveries
from gateway.trace.found import DeadLetter, text


def _values(metric: Counter | Gauge, label: str | None) -> dict[str, float]:
    """The metric's values summed by one label (None: one total under "")."""
    sums: dict[str, float] = defaultdict(float)
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            sums[sample.labels.get(label, "") if label else ""] += sample.value
    return dict(sums)


def _total(metric: Counter | Gauge) -> float:
    return sum(_values(metric, None).values())


def counters(metrics: Metrics) -> dict[str, Any]:
    """Every figure the console shows, by name (the page and its JSON share these)."""
    return {
        "received": _values(metrics.callbacks_received, "kind"),
        "received_total": _total(metrics.callbacks_received),
        "accepted": _values(metrics.callbacks_accepted, "kind"),
        "accepted_total": _total(metrics.callbacks_accepted),
        "refused": _values(metrics.callbacks_rejected, "reason"),
        "refused_total": _total(metrics.callbacks_rejected),
        "in_flight": _total(metrics.callbacks_in_flight),
        "spool_depth": _total(metrics.spool_depth),
        "spool_oldest_age_s": _total(metrics.spool_oldest_age),
        "processor_lag": _total(metrics.processor_lag),
        "published": _values(metrics.events_published, "type"),
        "published_total": _total(metrics.events_published),
        "dead_lettered": _values(metrics.dlq_records, "reason"),
        "dead_lettered_total": _total(metrics.dlq_records),
        "quarantined": _values(metrics.callbacks_quarantined, "reason"),
        "quarantined_total": _total(metrics.callbacks_quarantined),
        "ready": _total(metrics.ready) == 1,
        "insecure": _total(metrics.insecure_mode) == 1,
    }


def deliveries(recent: RecentDeliveries, limit: int = 50) -> list[dict[str, Any]]:
    return [
        {
            "at": d.at,
            "kind": d.kind,
            "outcome": d.outcome,
            "delivery_id": d.delivery_id,
            "entity_keys": list(d.entity_keys),
            "source": d.source,
            "latency_ms": d.latency_ms,
        }
        for d in recent.newest(limit)
    ]


def dead_letter_rows(records: Sequence[LogRecord]) -> list[dict[str, Any]]:
    """DLQ records as the console lists them: no body (it holds personal data)."""
    rows = []
    for record in records:
        letter = DeadLetter.of(record)
        rows.append(
            {
                "failed_at": letter.failed_at,
                "key": (record.key or b"").decode("utf-8", "replace"),
                "dead_letter": "follow-up" if letter.follow_up else "record",
                "reason": letter.reason,
                "attempts": letter.attempts,
                "delivery_id": letter.delivery_id,
            }
        )
    return rows


def quarantine_rows(records: Sequence[LogRecord]) -> list[dict[str, Any]]:
    return [
        {
            "received_at": text(r, "gw-received-at"),
            "kind": text(r, "gw-kind"),
            "reason": text(r, "gw-reason"),
            "delivery_id": text(r, "gw-delivery-id"),
        }
        for r in records
    ]

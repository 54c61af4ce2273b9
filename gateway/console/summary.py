"""The console's counters, read from this process's metrics registry (pure).

The same numbers /metrics exports (read from the same exposition, so with ingest workers
they cover every process of the replica), summed over the labels a person does not need
at a glance. They are this replica's since it started: with several replicas, each
console shows its own (the DLQ and quarantine lists and traces read the log: all of it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from gateway.log.base import LogRecord
from gateway.ops.metrics import Metrics
from gateway.ops.recent import RecentDeliveries
from gateway.trace.found import DeadLetter, text

Samples = dict[str, list[tuple[dict[str, str], float]]]


def _samples(metrics: Metrics) -> Samples:
    """Every sample /metrics would show, by sample name: this process's, or with ingest
    workers every live process's together (the same exposition /metrics serves)."""
    found: Samples = defaultdict(list)
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            found[sample.name].append((sample.labels, sample.value))
    return found


def _by(samples: Samples, name: str, label: str) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    for labels, value in samples.get(name, ()):
        sums[labels.get(label, "")] += value
    return dict(sums)


def _total(samples: Samples, name: str) -> float:
    return sum(value for _, value in samples.get(name, ()))


def counters(metrics: Metrics) -> dict[str, Any]:
    """Every figure the console shows, by name (the page and its JSON share these)."""
    s = _samples(metrics)
    received, accepted = "gateway_callbacks_received_total", "gateway_callbacks_accepted_total"
    refused, published = "gateway_callbacks_rejected_total", "gateway_events_published_total"
    dead, held = "gateway_dlq_records_total", "gateway_callbacks_quarantined_total"
    return {
        "received": _by(s, received, "kind"),
        "received_total": _total(s, received),
        "accepted": _by(s, accepted, "kind"),
        "accepted_total": _total(s, accepted),
        "refused": _by(s, refused, "reason"),
        "refused_total": _total(s, refused),
        "in_flight": _total(s, "gateway_callbacks_in_flight"),
        "spool_depth": _total(s, "gateway_spool_depth_records"),
        "spool_oldest_age_s": _total(s, "gateway_spool_oldest_age_seconds"),
        "processor_lag": _total(s, "gateway_processor_lag_records"),
        "published": _by(s, published, "type"),
        "published_total": _total(s, published),
        "dead_lettered": _by(s, dead, "reason"),
        "dead_lettered_total": _total(s, dead),
        "quarantined": _by(s, held, "reason"),
        "quarantined_total": _total(s, held),
        "ready": _total(s, "gateway_ready") == 1,
        "insecure": _total(s, "gateway_insecure_mode") == 1,
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

"""Prometheus metrics. One registry per app instance (tests build several apps).

Names follow Prometheus conventions: `gateway_` prefix, base units in the name
(`_seconds`, `_bytes`), `_total` on counters. Label values come from small fixed sets
(kinds, reasons, endpoints, event types), never from request data, with one exception:
`gateway_unknown_status_values_total` is labelled with OC's status as sent, bounded to the
first `UNKNOWN_STATUS_VALUES` distinct values per kind (later ones are `other`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from gateway.ops.labels import BoundedLabels

C = TypeVar("C", Counter, Gauge, Histogram)

UNKNOWN_STATUS_VALUES: Final = 20
"""Distinct unknown status values labelled per kind; later new ones count as `other`."""


class Children:
    """The labelled children of one counter or histogram, each looked up once: on a hot
    path `metric.labels(...)` (a lock, a validation, a dict) costs more than the count.
    Only for metrics whose children are never removed."""

    def __init__(self, metric: Counter | Histogram) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200)
_STAGE_BUCKETS = (
    *(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4),
    *(0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
"""Fine between 50 and 500 ms, where a batch's stages sit against a 250 ms budget."""


class Metrics:
    """Every metric the gateway exports, on its own registry."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.labels: dict[str, tuple[str, ...]] = {}  # family name -> label names (docs)
        # ingest
        self.callbacks_received = self._track(
            Counter,
            "gateway_callbacks_received_total",
            "Callbacks that reached a webhook route.",
            ["kind"],
            registry=r,
        )
        self.callbacks_accepted = self._track(
            Counter,
            "gateway_callbacks_accepted_total",
            "Callbacks stored durably and acknowledged to OC, by the log that took them.",
            ["kind", "log"],
            registry=r,
        )
        self.callbacks_in_flight = self._track(
            Gauge,
            "gateway_callbacks_in_flight",
            "Callbacks being received, verified and stored right now.",
            registry=r,
        )
        self.admission_limit = self._track(
            Gauge,
            "gateway_admission_limit",
            "Callbacks the process takes at once now (the adaptive limit); more are "
            "answered 503 overloaded.",
            registry=r,
        )
        self.event_loop_lag = self._track(
            Gauge,
            "gateway_event_loop_lag_seconds",
            "How late a short timer fired in the last admission window: how long ready "
            "work waits for the CPU (the admission limit's signal).",
            registry=r,
        )
        self.callbacks_rejected = self._track(
            Counter,
            "gateway_callbacks_rejected_total",
            "Callbacks refused, by reason.",
            ["reason"],
            registry=r,
        )
        self.callbacks_quarantined = self._track(
            Counter,
            "gateway_callbacks_quarantined_total",
            "Genuine callbacks of unknown shape sent to the quarantine topic.",
            ["reason"],
            registry=r,
        )
        self.verification_failures = self._track(
            Counter,
            "gateway_verification_failures_total",
            "Callbacks that failed verification, by the method that failed.",
            ["method"],
            registry=r,
        )
        self.ack_duration = self._track(
            Histogram,
            "gateway_ack_duration_seconds",
            "Time from a callback's arrival to the answer sent to OC.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.log_append_duration = self._track(
            Histogram,
            "gateway_log_append_duration_seconds",
            "Time the log took to confirm an append.",
            ["log"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.spool_depth = self._track(
            Gauge,
            "gateway_spool_depth_records",
            "Records waiting in the local spool for Kafka.",
            registry=r,
        )
        self.spool_oldest_age = self._track(
            Gauge,
            "gateway_spool_oldest_age_seconds",
            "Age of the oldest record in the local spool (0 when empty).",
            registry=r,
        )
        self.spooled = self._track(
            Counter,
            "gateway_spooled_records_total",
            "Records written to the local spool because Kafka did not confirm in time.",
            registry=r,
        )
        # the local SQLite files: log="embedded" (the embedded log) or "spool"
        self.log_writable = self._track(
            Gauge,
            "gateway_log_writable",
            "1 while the local SQLite log takes writes; 0 from a failed write until one "
            "succeeds again.",
            ["log"],
            registry=r,
        )
        self.log_write_errors = self._track(
            Counter,
            "gateway_log_write_errors_total",
            "Writes to the local SQLite log that failed, by reason (disk_full, io_error, "
            "busy, read_only, corrupt, ...).",
            ["log", "reason"],
            registry=r,
        )
        self.log_size = self._track(
            Gauge,
            "gateway_log_size_bytes",
            "Size on disk of the local SQLite log (database file and WAL).",
            ["log"],
            registry=r,
        )
        self.retention_removed = self._track(
            Counter,
            "gateway_log_retention_removed_records_total",
            "Records retention deleted from the local SQLite log.",
            ["log"],
            registry=r,
        )
        self.retention_reclaimed = self._track(
            Counter,
            "gateway_log_retention_reclaimed_bytes_total",
            "Bytes by which retention shrank the local SQLite log's files.",
            ["log"],
            registry=r,
        )
        self.ready = self._track(
            Gauge, "gateway_ready", "1 when the gateway accepts callbacks.", registry=r
        )
        self.insecure_mode = self._track(
            Gauge,
            "gateway_insecure_mode",
            "1 when callbacks are accepted without verification (development only).",
            registry=r,
        )
        # processor
        self.processor_lag = self._track(
            Gauge,
            "gateway_processor_lag_records",
            "Records in the log not yet processed, per partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.processor_partitions = self._track(
            Gauge,
            "gateway_processor_partitions",
            "Raw-log partitions the group assigned to this process's processor (Kafka log).",
            registry=r,
        )
        self.processor_producers = self._track(
            Gauge,
            "gateway_processor_producers",
            "Transactional producers this process's processor holds open: one per assigned "
            "partition once a rebalance is done; more means a leak (Kafka log).",
            registry=r,
        )
        self.processor_hanging_transactions = self._track(
            Counter,
            "gateway_processor_hanging_transactions_total",
            "Transactions a previous owner left open on a state partition (a broker "
            "restarted mid-commit skipped markers) that a takeover ended, by outcome: "
            "commit or abort, as their coordinator had decided (Kafka log).",
            ["outcome"],
            registry=r,
        )
        for outcome in ("commit", "abort"):
            self.processor_hanging_transactions.labels(outcome)
        self.events_published = self._track(
            Counter,
            "gateway_events_published_total",
            "Typed events published, by event type.",
            ["type"],
            registry=r,
        )
        self.decisions = self._track(
            Counter,
            "gateway_processor_decisions_total",
            "What the processor decided for each callback item: published, duplicate "
            "or absorbed (no news).",
            ["kind", "outcome"],
            registry=r,
        )
        self.retries = self._track(
            Counter,
            "gateway_retries_total",
            "Failed attempts that the retry layer tries again, by operation.",
            ["operation"],
            registry=r,
        )
        self.duplicates = self._track(
            Counter,
            "gateway_duplicates_total",
            "Callbacks recognised as duplicates and not published again.",
            ["kind"],
            registry=r,
        )
        self.status_regressions = self._track(
            Counter,
            "gateway_status_regressions_total",
            "Status changes that went backwards (published flagged).",
            ["kind"],
            registry=r,
        )
        self.unknown_status = self._track(
            Counter,
            "gateway_unknown_status_total",
            "Callbacks whose OC status did not map onto a known status.",
            ["kind"],
            registry=r,
        )
        self.unknown_status_values = self._track(
            Counter,
            "gateway_unknown_status_values_total",
            "Callbacks whose OC status did not map onto a known status, by OC's value as sent "
            f"(the first {UNKNOWN_STATUS_VALUES} distinct values per kind; later ones as other).",
            ["kind", "value"],
            registry=r,
        )
        self._unknown_values: dict[str, BoundedLabels] = {}
        self.dlq_records = self._track(
            Counter,
            "gateway_dlq_records_total",
            "Records sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=r,
        )
        self.event_lag = self._track(
            Histogram,
            "gateway_event_lag_seconds",
            "Time from OC's event time to the event's publication.",
            ["type"],
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.batch_duration = self._track(
            Histogram,
            "gateway_processor_batch_duration_seconds",
            "Time from a batch's look-ups being in to its commit (batches finished while a "
            "commit runs share the next one).",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.processor_stage = self._track(
            Histogram,
            "gateway_processor_stage_duration_seconds",
            "Where a batch's time goes, once per batch and stage: queued (its oldest record's "
            "log timestamp to its fetch), enrich (fetch to its OC look-ups being in), build "
            "(deciding and building its events), commit (handed to the commit to committed).",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.enrichment = self._track(
            Counter,
            "gateway_enrichment_total",
            "Events by enrichment status at publication.",
            ["status"],
            registry=r,
        )
        # OC API
        self.oc_requests = self._track(
            Counter,
            "gateway_oc_requests_total",
            "Requests to OC's API, by endpoint and outcome.",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.oc_request_duration = self._track(
            Histogram,
            "gateway_oc_request_duration_seconds",
            "Duration of requests to OC's API.",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.oc_cache_hits = self._track(
            Counter,
            "gateway_oc_cache_hits_total",
            "Look-ups answered from the cache or a shared in-flight request.",
            ["endpoint"],
            registry=r,
        )
        self.oc_batch_size = self._track(
            Histogram,
            "gateway_oc_batch_size",
            "Items per batched OC look-up.",
            ["endpoint"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.oc_breaker_state = self._track(
            Gauge,
            "gateway_oc_breaker_state",
            "Circuit breaker per endpoint: 0 closed, 1 half-open, 2 open.",
            ["endpoint"],
            registry=r,
        )
        self.oc_token_refreshes = self._track(
            Counter,
            "gateway_oc_token_refreshes_total",
            "OAuth access-token refreshes, by outcome.",
            ["outcome"],
            registry=r,
        )
        # reconciliation
        self.reconcile_changes = self._track(
            Counter,
            "gateway_reconcile_changes_found_total",
            "Changes found by polling OC that no callback reported.",
            ["kind"],
            registry=r,
        )
        self.reconcile_last_success = self._track(
            Gauge,
            "gateway_reconcile_last_success_timestamp_seconds",
            "Unix time of the last successful reconciliation run.",
            registry=r,
        )
        self.reconcile_window_lag = self._track(
            Gauge,
            "gateway_reconcile_window_lag_seconds",
            "Seconds of the look-back window the last run could not cover within its budget.",
            registry=r,
        )

        # operator console
        self.console_auth_failures = self._track(
            Counter,
            "gateway_console_auth_failures_total",
            "Refused console logins and requests: wrong_token, rate_limited (too many "
            "failures from one source, or overall), csrf (a form without its token).",
            ["reason"],
            registry=r,
        )

    def count_unknown_status(self, kind: str, value: str | None) -> None:
        """Count a status that mapped onto no known status, under OC's value."""
        labels = self._unknown_values.setdefault(kind, BoundedLabels(UNKNOWN_STATUS_VALUES))
        self.unknown_status_values.labels(kind, labels(value)).inc()

    def _track(self, kind: type[C], name: str, documentation: str, *args: Any, **kw: Any) -> C:
        labels = args[0] if args else kw.get("labelnames", ())
        self.labels[name.removesuffix("_total")] = tuple(labels)
        if kind is Gauge:
            kw["multiprocess_mode"] = _GAUGE_MODES.get(name, "livesum")
        return kind(name, documentation, *args, **kw)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format: this process's, or, with ingest
        workers (`use_multiprocess`), every live process's of this gateway together."""
        if not in_multiprocess():
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        _collector(registry)
        return generate_latest(registry)


_MULTIPROCESS_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
# prometheus_client's multiprocess helpers carry no annotations.
_collector: Any = multiprocess.MultiProcessCollector
_mark_dead: Any = multiprocess.mark_process_dead
_value_class: Any = values.MultiProcessValue
# How a gauge of several processes (ingest workers) adds up: spool and in-flight counts
# sum, lags and states take the worst, readiness the lowest.
_GAUGE_MODES: Final[dict[str, str]] = {
    "gateway_event_loop_lag_seconds": "livemax",
    "gateway_spool_oldest_age_seconds": "livemax",
    "gateway_log_writable": "livemin",
    "gateway_insecure_mode": "livemax",
    "gateway_processor_lag_records": "livemax",
    "gateway_oc_breaker_state": "livemax",
    "gateway_reconcile_last_success_timestamp_seconds": "max",
    "gateway_reconcile_window_lag_seconds": "livemax",
    "gateway_ready": "livemin",
}


def use_multiprocess(directory: Path) -> None:
    """Keep every metric of this process in `directory` (shared with the gateway's other
    processes, so one /metrics shows them all). Call before any `Metrics` is built;
    processes started afterwards inherit it through the environment."""
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[_MULTIPROCESS_ENV] = str(directory)
    join_multiprocess()


def join_multiprocess() -> None:
    """Keep this process's metrics in the directory its primary chose (an ingest worker;
    call before any `Metrics` is built).

    prometheus_client picks its value class when first imported (a primary imported it
    before it knew it would have workers), and by default asks the kernel for the pid at
    every update, to notice a fork: an ingest worker's callback pays that syscall some ten
    times (bench/README.md). The gateway's processes are started fresh and never fork, so
    the pid is taken once."""
    if not in_multiprocess():
        return
    pid = os.getpid()
    values.ValueClass = _value_class(lambda: pid)


def in_multiprocess() -> bool:
    """Whether this process's metrics live in the shared multiprocess files, where a
    gauge cannot be computed when scraped (`set_function`) and must be set."""
    return _MULTIPROCESS_ENV in os.environ


def process_gone(pid: int) -> None:
    """A process of this gateway exited: its live gauges no longer count."""
    if in_multiprocess():
        _mark_dead(pid)

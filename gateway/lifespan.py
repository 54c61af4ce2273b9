"""Everything the running gateway holds, born and closed in one place.

`Gateway` builds the log (embedded, or Kafka with its spool), verification, ingest, the
OC client and the processor from `Settings`; `lifespan` starts them before the first
request and stops them after the last one: the processor finishes its batch, the
spool drainer its in-flight batch, the producer flushes, clients close. It also runs
retention on the local SQLite file (the embedded log or the spool) and watches whether
that file takes writes (metrics, readiness).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from gateway.aio import where_waiting
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import ConfigurationError, LogUnavailable
from gateway.ingest.service import IngestService
from gateway.ingest.verify import Verifier, check_configured
from gateway.log.base import Lease, Log, SoleLease
from gateway.log.kafka import KafkaLease, KafkaLog, check_partitions
from gateway.log.retention import Retention
from gateway.log.spool import SpoolingLog, forward_leftovers
from gateway.log.sqlite import SqliteLog
from gateway.log.sqlite_file import REASONS
from gateway.oc.client import OcClient
from gateway.oc.factory import build_client
from gateway.ops.logs import get_logger
from gateway.ops.metrics import Metrics, in_multiprocess
from gateway.ops.recent import RecentDeliveries
from gateway.ops.tracing import Tracing
from gateway.process.enricher import OcEnricher
from gateway.process.handler import RecordHandler
from gateway.process.processor import Handler, Processor
from gateway.process.reconcile import Reconciler
from gateway.process.state import StateStore
from gateway.settings import Settings
from gateway.workers import WorkerPool

logger = get_logger("gateway")

_METRICS_INTERVAL_S = 5.0
_MIN_STOP_S = 1.0  # the processor's last commit, even when the request drain took the grace
_UNWIND_S = 5.0  # for cancelled tasks to close what they hold


def all_topics(settings: Settings) -> list[str]:
    return [settings.topic_raw, settings.topic_quarantine, *settings.processor_topics]


def compacted_topics(settings: Settings) -> set[str]:
    return {settings.topic_inventory, settings.topic_state}


def build_log(settings: Settings, clock: Clock = SYSTEM_CLOCK) -> Log:
    """The embedded log, or Kafka backed by a local spool for appends."""
    if not settings.uses_kafka:
        # The processor holds the raw records it has not committed past from retention,
        # also before its first commit.
        holders = {settings.topic_raw: [settings.kafka_consumer_group]}
        return SqliteLog(
            settings.data_dir / "log.sqlite3",
            compacted=compacted_topics(settings),
            retention_s=settings.embedded_retention_hours * 3600,
            clock=clock,
            holders=holders if settings.processor_enabled else None,
        )
    kafka = KafkaLog(settings, topics=all_topics(settings), compacted=compacted_topics(settings))
    spool = SqliteLog(settings.data_dir / settings.spool_file, clock=clock)
    return SpoolingLog(
        kafka,
        spool,
        topics=[settings.topic_raw, settings.topic_quarantine],
        append_timeout_s=settings.kafka_append_timeout_s,
        max_bytes=settings.spool_max_bytes,
        clock=clock,
    )


def local_logs(log: Log) -> dict[str, SqliteLog]:
    """The local SQLite file of a log by its metrics label: the embedded log itself, or
    the spool of Kafka."""
    if isinstance(log, SqliteLog):
        return {"embedded": log}
    if isinstance(log, SpoolingLog):
        return {"spool": log.spool}
    return {}


class _DataDirLock:
    """One embedded gateway per data directory: a second one would fork the log."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise ConfigurationError(
                f"another gateway is running on {self._path.parent} (embedded mode allows one)"
            ) from exc
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass
class Gateway:
    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    recent: RecentDeliveries = field(default_factory=RecentDeliveries)  # for the console
    # Tests wrap the record handler (the processor's port) to inject failures.
    wrap_handler: Callable[[Handler], Handler] | None = None
    tracing: Tracing | None = None  # built from settings unless given (tests)
    # Spool files of ingest workers that no longer run: their records go to Kafka.
    leftover_spools: list[Path] = field(default_factory=list)
    # A primary's ingest workers: it is ready only while all of them are.
    workers: WorkerPool | None = None
    # The one time source of every component (tests pass a fake one).
    clock: Clock = SYSTEM_CLOCK
    log: Log = field(init=False)
    verifier: Verifier = field(init=False)
    ingest: IngestService = field(init=False)
    processor: Processor | None = field(init=False, default=None)
    oc_client: OcClient | None = field(init=False, default=None)
    enricher: OcEnricher | None = field(init=False, default=None)
    reconciler: Reconciler | None = field(init=False, default=None)
    retention: Retention | None = field(init=False, default=None)
    shutting_down: bool = field(init=False, default=False)
    _tasks: list[asyncio.Task[None]] = field(init=False, default_factory=list)
    _lock: _DataDirLock | None = field(init=False, default=None)
    _ready_cache: tuple[float, bool] = field(init=False, default=(-math.inf, False))
    _shutdown_deadline: float | None = field(init=False, default=None)  # clock.monotonic()

    def __post_init__(self) -> None:
        self.log = build_log(self.settings, self.clock)
        self.verifier = Verifier(self.settings, self.clock)
        if self.tracing is None:
            self.tracing = Tracing(self.settings)
        self.ingest = IngestService(
            self.settings, self.log, self.verifier, self.metrics, self.tracing, self.clock
        )
        if self.settings.processor_enabled:
            self.oc_client = build_client(self.settings, self.metrics, self.tracing, self.clock)
            if self.oc_client is not None:
                self.enricher = OcEnricher(self.oc_client, self.clock)

    async def start(self) -> None:
        settings = self.settings
        if settings.ingest_enabled:
            check_configured(self.verifier)
        if self.verifier.insecure:
            logger.warning("INSECURE: callbacks are accepted without any verification")
        self.metrics.insecure_mode.set(1 if self.verifier.insecure else 0)
        if not settings.uses_kafka:
            self._lock = _DataDirLock(settings.data_dir / "gateway.lock")
            self._lock.acquire()
        if isinstance(self.log, SpoolingLog):
            self._watch_spooling(self.log)
        local = local_logs(self.log)
        for label, sqlite_log in local.items():
            self._watch(label, sqlite_log)
        await self.log.start()
        if isinstance(self.log, SpoolingLog) and self.leftover_spools:
            leftovers = forward_leftovers(self.log.kafka, self.leftover_spools, self._topics())
            self._tasks.append(asyncio.create_task(leftovers, name="leftover-spools"))
        self.retention = Retention(local, self.metrics, settings.retention_interval_s)
        self._tasks.append(asyncio.create_task(self.retention.run(), name="retention"))
        if settings.processor_enabled:
            if isinstance(self.log, SpoolingLog):
                with contextlib.suppress(LogUnavailable):
                    await check_partitions(self.log.kafka, settings.topic_raw, settings.topic_state)
            if self.oc_client is not None:
                await self.oc_client.start()
            store = StateStore(self.log, settings.topic_state)
            handler: Handler = RecordHandler(
                settings, self.metrics, self.enricher, self.clock, tracing=self.tracing
            )
            if self.wrap_handler is not None:
                handler = self.wrap_handler(handler)
            self.processor = Processor(
                settings,
                self.log,
                store,
                handler,
                self.metrics,
                self.clock,
                give_way=self._give_way(),
            )
            self._tasks.append(asyncio.create_task(self.processor.run(), name="processor"))
            if self.oc_client is not None and settings.reconcile_enabled:
                self.reconciler = Reconciler(
                    settings, self.log, self.oc_client, self.metrics, self._lease(), self.clock
                )
                self._tasks.append(asyncio.create_task(self.reconciler.run(), name="reconciler"))
        self._tasks.append(asyncio.create_task(self._refresh_gauges(), name="gauges"))
        if settings.ingest_enabled:
            watch = self.ingest.watch_load(self.clock)
            self._tasks.append(asyncio.create_task(watch, name="admission"))
        self.metrics.ready.set(1)
        logger.info(
            "gateway started",
            log=self.log.name,
            verification=list(self.verifier.methods) or ["insecure"],
            processor=settings.processor_enabled,
            enrichment=self.enricher is not None,
        )

    def _watch_spooling(self, log: SpoolingLog) -> None:
        log.on_spooled = self.metrics.spooled.inc
        log.on_retry = self.metrics.retries.labels("spool_drain").inc
        kafka = log.kafka
        hanging = self.metrics.processor_hanging_transactions
        kafka.on_hanging_ended = lambda outcome: hanging.labels(outcome).inc()
        if not in_multiprocess():  # there `_refresh_gauges` sets them (no callbacks)
            self.metrics.processor_partitions.set_function(lambda: len(kafka.holdings().partitions))
            self.metrics.processor_producers.set_function(lambda: len(kafka.holdings().producers))

    def _watch(self, label: str, log: SqliteLog) -> None:
        """Count the local file's failed writes by reason and show whether it takes writes."""
        errors = self.metrics.log_write_errors
        writable = self.metrics.log_writable.labels(label)
        for reason in sorted(REASONS):
            errors.labels(label, reason)  # every series exists from the start, at 0
        log.on_write_error = lambda reason: errors.labels(label, reason).inc()
        log.on_writable = lambda ok: writable.set(1 if ok else 0)
        writable.set(1)

    def _give_way(self) -> Callable[[], Awaitable[None]] | None:
        """What the processor waits on before each batch while ingest, in this process or
        in its workers, refuses callbacks."""
        if self.settings.ingest_enabled:
            return self.ingest.give_way
        if self.workers is not None:
            return self.workers.give_way
        return None

    def _topics(self) -> list[str]:
        return [self.settings.topic_raw, self.settings.topic_quarantine]

    def _lease(self) -> Lease:
        if isinstance(self.log, SpoolingLog):
            group = f"{self.settings.kafka_consumer_group}-reconciler"
            return KafkaLease(self.log.kafka, self.settings, group, self.settings.topic_lease)
        return SoleLease()  # one embedded gateway per data directory

    def begin_shutdown(self) -> None:
        """Readiness turns false now; `stop()` finishes within the shutdown grace counted
        from the first call (SIGTERM), whatever the request drain took of it."""
        self.shutting_down = True
        self.metrics.ready.set(0)
        if self._shutdown_deadline is None:
            self._shutdown_deadline = self.clock.monotonic() + self.settings.shutdown_grace_s

    async def stop(self) -> None:
        self.begin_shutdown()
        if self.processor is not None:
            await self.processor.stop()
        if self.reconciler is not None:
            await self.reconciler.stop()
        for task in self._tasks:
            if task.get_name() not in ("processor", "reconciler"):
                task.cancel()
        await self._finish_tasks()
        await self.log.close()  # closes what a cancelled task left open
        if self.oc_client is not None:
            await self.oc_client.close()
        if self._lock is not None:
            self._lock.release()
        if self.tracing is not None:
            self.tracing.shutdown()
        logger.info("gateway stopped")

    async def _finish_tasks(self) -> None:
        """Wait for the tasks until the shutdown deadline (at least a second), then cancel
        what is still running and give it a few seconds to unwind."""
        assert self._shutdown_deadline is not None
        if not self._tasks:
            return
        wait_s = max(self._shutdown_deadline - self.clock.monotonic(), _MIN_STOP_S)
        _, running = await asyncio.wait(self._tasks, timeout=wait_s)  # cancels nothing
        if running:
            logger.warning(
                "shutdown grace spent; cancelling",
                tasks=sorted(task.get_name() for task in running),
                waiting_in=where_waiting(running),
                grace_s=self.settings.shutdown_grace_s,
            )
            for task in running:
                task.cancel()
            await asyncio.wait(running, timeout=_UNWIND_S)
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                logger.error("task failed", task=task.get_name(), error=repr(task.exception()))

    async def ready(self) -> bool:
        """Accepting callbacks: not shutting down and the log takes writes (cached 1 s)."""
        if self.shutting_down:
            return False
        checked_at, ok = self._ready_cache
        now = self.clock.monotonic()
        if now - checked_at > 1.0:
            ok = await self.log.writable()
            self._ready_cache = (now, ok)
            self.metrics.ready.set(1 if ok else 0)
        return ok and (self.workers is None or self.workers.all_ready)

    async def _refresh_gauges(self) -> None:
        local = local_logs(self.log)
        while True:
            if isinstance(self.log, SpoolingLog):
                if in_multiprocess():  # gauges there keep no callbacks: set them
                    held = self.log.kafka.holdings()
                    self.metrics.processor_partitions.set(len(held.partitions))
                    self.metrics.processor_producers.set(len(held.producers))
                with contextlib.suppress(LogUnavailable):
                    stats = await self.log.spool_stats()
                    self.metrics.spool_depth.set(stats.records)
                    self.metrics.spool_oldest_age.set(stats.oldest_age_s)
            for label, sqlite_log in local.items():
                self.metrics.log_size.labels(label).set(sqlite_log.size_bytes())
                # A file that failed a write tries a small one, so it finds out that it
                # takes writes again also when nothing else writes to it (nothing asks
                # for /readyz, or Kafka takes the appends and the spool is idle).
                await sqlite_log.writable()
            await self.ready()
            await asyncio.sleep(_METRICS_INTERVAL_S)

    def request_state(self) -> dict[str, Any]:
        return {
            "gateway": self,
            "ingest": self.ingest,
            "metrics": self.metrics,
            "recent": self.recent,
            "max_body_bytes": self.settings.max_body_bytes,
        }

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[dict[str, Any]]:
        await self.start()
        try:
            yield self.request_state()
        finally:
            await self.stop()

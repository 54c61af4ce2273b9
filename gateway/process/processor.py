"""The processor loop: fetch a batch of raw records, turn them into events, commit.

Records of one key are handled in order; different keys run concurrently. A batch's
events, its state changelog and its input positions are committed together (a Kafka
transaction per partition, or one SQLite transaction). While a batch commits, the next
one is fetched and processed on top of its state; the next commit waits for it. If a
commit fails, the consumer is rebuilt: state is reloaded from the changelog and the
records are read again from the committed positions, so nothing is skipped and nothing
doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from gateway.aio import wait_set
from gateway.errors import LogUnavailable, ProcessingError
from gateway.log.base import Log, LogConsumer, LogRecord, Record, TopicPartition
from gateway.ops.logs import get_logger
from gateway.ops.metrics import Metrics
from gateway.ops.tracing import Tracing
from gateway.process.dlq import dead_letter
from gateway.process.state import StateStore, StateView
from gateway.settings import Settings

logger = get_logger("gateway.process")

_FETCH_TIMEOUT_S = 0.5
_LAG_INTERVAL_S = 5.0
_EXPIRY_INTERVAL_S = 600.0
_RETRY_BASE_S = 0.05
_RETRY_MAX_S = 2.0


class Handler(Protocol):
    """Turns one raw record into output records, reading and updating entity state."""

    async def handle(self, record: LogRecord, view: StateView) -> list[Record]: ...

    async def follow_ups(self, view: StateView, now_ms: int) -> dict[int, list[Record]]:
        """Outputs for deferred work that is due (e.g. enrichment owed), by the raw
        partition of the entity they concern."""
        ...


class Processor:
    def __init__(
        self,
        settings: Settings,
        log: Log,
        store: StateStore,
        handler: Handler,
        metrics: Metrics,
        tracing: Tracing | None = None,
    ) -> None:
        self._tracing = tracing or Tracing(settings)
        self._settings = settings
        self._log = log
        self._store = store
        self._handler = handler
        self._metrics = metrics
        self._raw_topic = settings.topic_raw
        self._batch_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._consumer: LogConsumer | None = None
        self._last_lag = 0.0
        self._last_expiry = time.monotonic()
        self._in_flight: asyncio.Task[None] | None = None  # the previous batch's commit

    # --- AssignmentListener ---------------------------------------------------------------
    async def on_assigned(self, partitions: set[TopicPartition]) -> None:
        await self._store.load({tp for tp in partitions if tp[0] == self._raw_topic})
        logger.info("partitions assigned", partitions=sorted(p for _, p in partitions))

    async def on_revoked(self, partitions: set[TopicPartition]) -> None:
        # Wait for the batch in flight to commit before another member takes over.
        async with self._batch_lock:
            with contextlib.suppress(LogUnavailable):
                await self._settle()
            self._store.drop(partitions)
            for topic, partition in partitions:
                self._metrics.processor_lag.remove(topic, str(partition))
        logger.info("partitions revoked", partitions=sorted(p for _, p in partitions))

    # --- the loop -------------------------------------------------------------------------
    async def run(self) -> None:
        backoff = _RETRY_BASE_S
        while not self._stopping.is_set():
            consumer = self._log.consumer(
                self._settings.kafka_consumer_group, [self._raw_topic], listener=self
            )
            try:
                await consumer.start()
                self._consumer = consumer
                await self._consume(consumer)
                backoff = _RETRY_BASE_S
            except LogUnavailable as exc:
                logger.warning("processor restarts its consumer", error=str(exc))
                await self._pause(backoff)
                backoff = min(backoff * 2, _RETRY_MAX_S * 5)
            finally:
                self._consumer = None
                with contextlib.suppress(LogUnavailable):
                    await consumer.stop()

    async def stop(self) -> None:
        self._stopping.set()

    async def _pause(self, seconds: float) -> None:
        await wait_set(self._stopping, seconds)

    async def _consume(self, consumer: LogConsumer) -> None:
        try:
            while not self._stopping.is_set():
                records = await consumer.fetch(
                    self._settings.processor_batch_size, _FETCH_TIMEOUT_S
                )
                async with self._batch_lock:
                    await self._process_batch(consumer, records)
                    await self._expire_state(consumer)
                await self._report_lag(consumer)
        finally:
            await self._settle()  # on the way out too: the last batch commits or fails

    async def _settle(self) -> None:
        """Wait for the commit in flight; its failure (LogUnavailable) surfaces here."""
        task, self._in_flight = self._in_flight, None
        if task is not None:
            await task

    async def _process_batch(self, consumer: LogConsumer, records: Sequence[LogRecord]) -> None:
        started = time.perf_counter()
        view = StateView(self._store)
        outputs = await self._handle_all(records, view)
        due = await self._handler.follow_ups(view, int(time.time() * 1000))
        for partition, records_out in (*due.items(), *view.changelog().items()):
            outputs.setdefault((self._raw_topic, partition), []).extend(records_out)
        positions: dict[TopicPartition, int] = {}
        for record in records:
            positions[record.topic_partition] = record.offset + 1
        if not positions and not any(outputs.values()):
            return
        view.apply()  # the next batch builds on this state while this one commits
        await self._settle()  # commits stay in order: the previous one first

        async def commit() -> None:
            await consumer.commit(outputs, positions)
            self._count_published([r for rs in outputs.values() for r in rs])
            if records:
                self._metrics.batch_duration.observe(time.perf_counter() - started)

        self._in_flight = asyncio.create_task(commit(), name="processor-commit")

    async def _expire_state(self, consumer: LogConsumer) -> None:
        """Now and then, forget entities quiet for longer than the state retention, so
        dedup memory does not grow with every order ever seen."""
        now = time.monotonic()
        if now - self._last_expiry < _EXPIRY_INTERVAL_S:
            return
        self._last_expiry = now
        cutoff = int((time.time() - self._settings.state_retention_days * 86400) * 1000)
        await self._settle()
        gone = self._store.expired(cutoff)
        if gone:
            outputs = {(self._raw_topic, p): records for p, records in gone.items()}
            await consumer.commit(outputs, {})
            logger.info("state expired", entities=sum(len(r) for r in gone.values()))

    async def _handle_all(
        self, records: Sequence[LogRecord], view: StateView
    ) -> dict[TopicPartition, list[Record]]:
        """Handle records, in order per key and concurrently across keys; the outputs
        are grouped by the input partition they came from, in input order."""
        results: list[list[Record]] = [[] for _ in records]
        lanes: dict[tuple[int, bytes | None], list[int]] = {}
        for index, record in enumerate(records):
            lanes.setdefault((record.partition, record.key), []).append(index)

        async def run_lane(indexes: list[int]) -> None:
            for index in indexes:
                results[index] = await self._handle_one(records[index], view)

        async with asyncio.TaskGroup() as group:
            for indexes in lanes.values():
                group.create_task(run_lane(indexes))
        grouped: dict[TopicPartition, list[Record]] = {}
        for record, result in zip(records, results, strict=True):
            grouped.setdefault(record.topic_partition, []).extend(result)
        return grouped

    async def _handle_one(self, record: LogRecord, view: StateView) -> list[Record]:
        attempts = 0
        delay = _RETRY_BASE_S
        while True:
            attempts += 1
            try:
                return await self._traced(record, view)
            except ProcessingError as exc:
                return [self._dead_letter(record, "processing_error", str(exc), attempts)]
            except LogUnavailable:
                raise
            except Exception as exc:  # a bug or a surprise: retry, then dead-letter
                if attempts >= self._settings.processor_max_attempts:
                    reason = f"{type(exc).__name__}: {exc}"
                    return [self._dead_letter(record, "unexpected_error", reason, attempts)]
                logger.warning(
                    "record failed; retrying",
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    attempt=attempts,
                    error=type(exc).__name__,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_S)

    async def _traced(self, record: LogRecord, view: StateView) -> list[Record]:
        """Handle a record; with tracing on, in a span continuing the callback's trace,
        whose context the outputs carry on."""
        if not self._tracing.enabled:
            return await self._handler.handle(record, view)
        kind = (record.header("gw-kind") or b"record").decode()
        with self._tracing.span(f"process {kind}", parent=record.headers, kind="consumer"):
            outputs = await self._handler.handle(record, view)
            trace = self._tracing.headers()
        return [dataclasses.replace(r, headers=r.headers + trace) for r in outputs]

    def _dead_letter(self, record: LogRecord, reason: str, detail: str, attempts: int) -> Record:
        self._metrics.dlq_records.labels(reason).inc()
        logger.error(
            "record dead-lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
            detail=detail,
            attempts=attempts,
        )
        return dead_letter(record, self._settings.topic_dlq, f"{reason}: {detail}", attempts)

    def _count_published(self, outputs: Sequence[Record]) -> None:
        now = time.time()
        for output in outputs:
            event_type = output.header("ce_type")
            if event_type is None:
                continue
            name = event_type.decode()
            self._metrics.events_published.labels(name).inc()
            occurred = output.header("ce_time")
            if occurred is not None:
                lag = now - datetime.fromisoformat(occurred.decode()).timestamp()
                self._metrics.event_lag.labels(name).observe(max(0.0, lag))

    async def _report_lag(self, consumer: LogConsumer) -> None:
        now = time.monotonic()
        if now - self._last_lag < _LAG_INTERVAL_S:
            return
        self._last_lag = now
        with contextlib.suppress(LogUnavailable):
            for (topic, partition), lag in (await consumer.lag()).items():
                self._metrics.processor_lag.labels(topic, str(partition)).set(lag)

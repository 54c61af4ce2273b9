"""The processor loop: fetch a batch of raw records, turn them into events, commit.

The handler turns a whole batch into outputs (handler.py); the loop here does the I/O
around it. Records of one key are handled in order; different keys together. A batch's
events, its state changelog and its input positions are committed together (a Kafka
transaction per partition, or one SQLite transaction). While a batch commits, the next
one is fetched and processed on top of its state; the next commit waits for it. If a
commit fails, the consumer is rebuilt: state is reloaded from the changelog and the
records are read again from the committed positions, so nothing is skipped and nothing
doubled.

A record the handler could not handle is retried by the shared retry policy
(gateway/retry.py: jittered backoff, `processor_max_attempts` in all) and then
dead-lettered with the reason; a `ProcessingError` is dead-lettered at once. A
rebalance or a stop cuts a retry wait short: the batch is abandoned (never committed,
its state never applied) and read again by whoever owns its partitions. A batch
fetched before a rebalance is not processed after it: it is dropped and read again from
the committed positions.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Final, Protocol

from gateway.aio import wait_set
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import LogUnavailable
from gateway.log.base import Log, LogConsumer, LogRecord, Record, TopicPartition
from gateway.ops.logs import get_logger
from gateway.ops.metrics import Children, Metrics
from gateway.process.decide import forgettable
from gateway.process.dlq import dead_letter
from gateway.process.handler import Deferred, Done, Failed, Handled
from gateway.process.state import StateStore, StateView
from gateway.retry import Backoff, RetryPolicy
from gateway.settings import Settings

logger = get_logger("gateway.process")

_FETCH_TIMEOUT_S: Final = 0.5
_LAG_INTERVAL_S: Final = 5.0
_EXPIRY_INTERVAL_S: Final = 600.0
RECORD_RETRY_BASE_S: Final = 0.05
RECORD_RETRY_CAP_S: Final = 2.0
RESTART_BASE_S: Final = 0.05
RESTART_CAP_S: Final = 10.0


class Handler(Protocol):
    """Turns a batch of raw records into outputs, reading and updating entity state."""

    async def handle(self, records: Sequence[LogRecord], view: StateView) -> list[Handled]:
        """One result per record, in input order: `Done`, `Failed` (state untouched) or
        `Deferred` (an earlier record of its entity failed and is retried first)."""
        ...

    async def follow_ups(self, view: StateView, now_ms: int) -> dict[int, list[Record]]:
        """Outputs for deferred work that is due (e.g. enrichment owed), by the raw
        partition of the entity they concern."""
        ...


class _Abandoned(Exception):
    """A batch given up half-way (a rebalance or a stop cut a retry wait short)."""


class Processor:
    def __init__(
        self,
        settings: Settings,
        log: Log,
        store: StateStore,
        handler: Handler,
        metrics: Metrics,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._log = log
        self._store = store
        self._handler = handler
        self._metrics = metrics
        self._clock = clock
        self._rng = rng or random.Random()
        self._raw_topic = settings.topic_raw
        self._records = RetryPolicy(
            max_retries=max(0, settings.processor_max_attempts - 1),
            base_s=RECORD_RETRY_BASE_S,
            cap_s=RECORD_RETRY_CAP_S,
            retry_unexpected=True,
        )
        self._restarts = Backoff(
            RetryPolicy(max_retries=0, base_s=RESTART_BASE_S, cap_s=RESTART_CAP_S),
            self._rng,
            on_retry=metrics.retries.labels("processor_consumer").inc,
        )
        self._published = Children(metrics.events_published)
        self._event_lag = Children(metrics.event_lag)
        self._batch_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._interrupt = asyncio.Event()  # cuts a retry wait short (revocation, stop)
        self._consumer: LogConsumer | None = None
        self._last_lag = 0.0
        self._last_expiry = clock.monotonic()
        self._in_flight: asyncio.Task[None] | None = None  # the previous batch's commit
        # Bumped by every revocation and assignment: a batch fetched before a rebalance
        # is not processed after it (see `_consume`).
        self._assignments = 0

    # --- AssignmentListener ---------------------------------------------------------------
    async def on_assigned(self, partitions: set[TopicPartition]) -> None:
        self._assignments += 1
        await self._store.load({tp for tp in partitions if tp[0] == self._raw_topic})
        logger.info("partitions assigned", partitions=sorted(p for _, p in partitions))

    async def on_revoked(self, partitions: set[TopicPartition]) -> None:
        # Wait for the batch in flight to commit before another member takes over; a
        # batch waiting to retry a record is abandoned instead of holding the handover.
        self._assignments += 1
        self._interrupt.set()
        try:
            async with self._batch_lock:
                with contextlib.suppress(LogUnavailable):
                    await self._settle()
                self._store.drop(partitions)
                for topic, partition in partitions:
                    self._metrics.processor_lag.remove(topic, str(partition))
        finally:
            if not self._stopping.is_set():
                self._interrupt.clear()
        logger.info("partitions revoked", partitions=sorted(p for _, p in partitions))

    # --- the loop -------------------------------------------------------------------------
    async def run(self) -> None:
        while not self._stopping.is_set():
            consumer = self._log.consumer(
                self._settings.kafka_consumer_group, [self._raw_topic], listener=self
            )
            try:
                await consumer.start()
                self._consumer = consumer
                await self._consume(consumer)
            except LogUnavailable as exc:
                delay = self._restarts.failed()
                logger.warning(
                    "processor restarts its consumer",
                    error=str(exc),
                    retry_in_s=round(delay, 2),
                    failures=self._restarts.failures,
                )
                await wait_set(self._stopping, delay, self._clock)
            finally:
                self._consumer = None
                with contextlib.suppress(LogUnavailable):
                    await consumer.stop()

    async def stop(self) -> None:
        self._stopping.set()
        self._interrupt.set()

    async def _consume(self, consumer: LogConsumer) -> None:
        try:
            while not self._stopping.is_set():
                assignments = self._assignments
                records = await consumer.fetch(
                    self._settings.processor_batch_size, _FETCH_TIMEOUT_S
                )
                try:
                    async with self._batch_lock:
                        if records and self._assignments != assignments:
                            await self._refetch(consumer, records)
                            continue
                        if self._in_flight is not None and self._in_flight.done():
                            # A failed commit surfaces now, not only when the next records
                            # come: after it, nothing may arrive until it is retried.
                            await self._settle()
                        await self._process_batch(consumer, records)
                        await self._expire_state(consumer)
                except _Abandoned:
                    async with self._batch_lock:  # after the revocation that cut it short
                        await self._settle()
                        if not self._stopping.is_set():
                            await consumer.rewind()
                    continue
                if self._in_flight is None:  # a commit in flight counts once it went through
                    self._restarts.succeeded()
                await self._report_lag(consumer)
        finally:
            await self._settle()  # on the way out too: the last batch commits or fails

    async def _refetch(self, consumer: LogConsumer, records: Sequence[LogRecord]) -> None:
        """Drop a batch a rebalance overtook, and read again from the committed positions.

        Records handed over before a revocation may be processed only after it: the loop
        waits for the batch lock while the revocation holds it, and a fetch can span a
        whole rebalance. Their partitions may be another member's by then, or this one's
        again, with positions reset to the committed offsets and state reloaded without
        them. Processed against that state and committed by the new producer, they would
        be published twice (the second time when read again from the committed offset)."""
        await self._settle()
        if not self._stopping.is_set():
            await consumer.rewind()
        logger.info(
            "batch fetched before a rebalance dropped; reading it again",
            records=len(records),
            partitions=sorted({r.partition for r in records}),
        )

    async def _settle(self) -> None:
        """Wait for the commit in flight; its failure (LogUnavailable) surfaces here."""
        task, self._in_flight = self._in_flight, None
        if task is not None:
            await task

    async def _process_batch(self, consumer: LogConsumer, records: Sequence[LogRecord]) -> None:
        started = time.perf_counter()
        view = StateView(self._store)
        done = await self._handle(records, view)
        due = await self._handler.follow_ups(view, int(self._clock.time() * 1000))
        outputs: dict[TopicPartition, list[Record]] = {}
        positions: dict[TopicPartition, int] = {}
        published: list[tuple[str, datetime]] = []
        for record, result in zip(records, done, strict=True):
            outputs.setdefault(record.topic_partition, []).extend(result.outputs)
            positions[record.topic_partition] = record.offset + 1
            published += result.published
        for partition, records_out in (*due.items(), *view.changelog().items()):
            outputs.setdefault((self._raw_topic, partition), []).extend(records_out)
        if not positions and not any(outputs.values()):
            return
        view.apply()  # the next batch builds on this state while this one commits
        await self._settle()  # commits stay in order: the previous one first

        async def commit() -> None:
            await consumer.commit(outputs, positions)
            self._restarts.succeeded()
            self._count_published(published)
            if records:
                self._metrics.batch_duration.observe(time.perf_counter() - started)

        self._in_flight = asyncio.create_task(commit(), name="processor-commit")

    async def _handle(self, records: Sequence[LogRecord], view: StateView) -> list[Done]:
        """Every record handled or dead-lettered; failed records are tried again (with
        the records of their entity that waited for them) as the retry policy allows."""
        results: list[Done | None] = [None] * len(records)
        attempts = [0] * len(records)
        pending = list(range(len(records)))
        while pending:
            handled = await self._handler.handle([records[i] for i in pending], view)
            again: list[int] = []
            waits: list[float] = []
            for index, result in zip(pending, handled, strict=True):
                if isinstance(result, Done):
                    results[index] = result
                elif isinstance(result, Deferred):
                    again.append(index)
                else:
                    attempts[index] += 1
                    wait = self._retry_in(records[index], result, attempts[index])
                    if wait is None:
                        results[index] = Done(
                            [self._dead_letter(records[index], result, attempts[index])]
                        )
                    else:
                        again.append(index)
                        waits.append(wait)
            if waits and await wait_set(self._interrupt, max(waits), self._clock):
                raise _Abandoned
            pending = again
        return [r for r in results if r is not None]

    def _retry_in(self, record: LogRecord, failed: Failed, attempts: int) -> float | None:
        if failed.permanent:
            return None
        wait = self._records.delay(attempts, failed.error, 0.0, self._rng)
        if wait is not None:
            self._metrics.retries.labels("processor_record").inc()
            logger.warning(
                "record failed; retrying",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                attempt=attempts,
                error=type(failed.error).__name__,
                retry_in_s=round(wait, 3),
            )
        return wait

    def _dead_letter(self, record: LogRecord, failed: Failed, attempts: int) -> Record:
        error = failed.error
        if failed.permanent:
            reason, detail = "processing_error", str(error)
        else:
            reason, detail = "unexpected_error", f"{type(error).__name__}: {error}"
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
        return dead_letter(
            record, self._settings.topic_dlq, f"{reason}: {detail}", attempts, self._clock.now()
        )

    async def _expire_state(self, consumer: LogConsumer) -> None:
        """Now and then, forget entities quiet for longer than the state retention, so
        dedup memory does not grow with every order ever seen."""
        now = self._clock.monotonic()
        if now - self._last_expiry < _EXPIRY_INTERVAL_S:
            return
        self._last_expiry = now
        now_ms = int(self._clock.time() * 1000)
        retention_ms = int(self._settings.state_retention_days * 86_400_000)
        await self._settle()
        gone = self._store.forget(
            (p, k) for p, k, s in self._store.owned() if forgettable(s, now_ms, retention_ms)
        )
        if gone:
            outputs = {(self._raw_topic, p): records for p, records in gone.items()}
            await consumer.commit(outputs, {})
            logger.info("state expired", entities=sum(len(r) for r in gone.values()))

    def _count_published(self, published: Sequence[tuple[str, datetime]]) -> None:
        now = self._clock.time()
        for event_type, occurred in published:
            self._published(event_type).inc()
            self._event_lag(event_type).observe(max(0.0, now - occurred.timestamp()))

    async def _report_lag(self, consumer: LogConsumer) -> None:
        now = self._clock.monotonic()
        if now - self._last_lag < _LAG_INTERVAL_S:
            return
        self._last_lag = now
        with contextlib.suppress(LogUnavailable):
            for (topic, partition), lag in (await consumer.lag()).items():
                self._metrics.processor_lag.labels(topic, str(partition)).set(lag)

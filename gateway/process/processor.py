"""The processor loop: fetch a batch of raw records, turn them into events, commit.

The handler turns a whole batch into outputs (handler.py); the loop here does the I/O
around it. Records of one key are handled in order; different keys together. Batches
overlap in three steps: while a batch waits for OC, the reader (reading.py) fetches
the next one and sends its look-ups, at the pace of OC's budget; a batch is finished
(decided and built on top of the state of every batch before it) once its look-ups are
in; and while it commits, the next one is finished, whose commit waits for it. A
batch's events, its state changelog and its input positions are committed together (a
Kafka transaction per partition, or one SQLite transaction). If a commit fails, the
consumer is rebuilt: state is reloaded from the changelog and the records are read
again from the committed positions, so nothing is skipped and nothing doubled. When
ingest (in this process, or in the replica's ingest workers) is refusing callbacks, the
reader waits for it (up to a second a batch, `give_way`): a callback taken is stored for
good while one refused comes back, so under overload taking callbacks comes first and
the processor catches up with bigger batches once the load eases.

A record the handler could not handle is retried by the shared retry policy
(gateway/retry.py: jittered backoff, `processor_max_attempts` in all) and then
dead-lettered with the reason; a `ProcessingError` is dead-lettered at once. A
rebalance or a stop cuts a retry wait short: the batch is abandoned (never committed,
its state never applied) and read again by whoever owns its partitions. A batch
fetched before a rebalance is not processed after it: it is dropped, with the batch the
reader began after it, and both are read again from the committed positions.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Final, Protocol

from gateway.aio import wait_set
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import LogUnavailable
from gateway.log.base import Log, LogConsumer, LogRecord, Record, TopicPartition
from gateway.ops.logs import get_logger
from gateway.ops.metrics import Children, Metrics, in_multiprocess
from gateway.process.commits import GroupCommit, Work
from gateway.process.decide import forgettable
from gateway.process.dlq import dead_letter
from gateway.process.handler import Begun, Deferred, Done, Failed, Handled
from gateway.process.reading import Fetched, Handoff, read
from gateway.process.state import StateStore, StateView
from gateway.retry import Backoff, RetryPolicy
from gateway.settings import Settings

logger = get_logger("gateway.process")

_FETCH_TIMEOUT_S: Final = 0.5
COMMIT_BACKLOG_RECORDS: Final = 5000
"""Output records waiting for a commit past which the loop waits for the commits."""
PIPELINE_DEPTH: Final = 3
"""Batches the reader may have begun that the loop has not taken yet; what paces it is
OC's budget (`Handler.ready`)."""
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

    async def begin(self, records: Sequence[LogRecord], view: StateView) -> Begun:
        """`handle`'s work that can run ahead of the batches before (reading, asking OC)."""
        ...

    async def finish(self, begun: Begun, view: StateView) -> list[Handled]:
        """The rest of `handle`, on top of the state of every batch before."""
        ...

    async def ready(self) -> None:
        """Return once a batch begun now would have its look-ups sent at once."""
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
        give_way: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`give_way`, when ingest runs in this replica (this process or its workers):
        returns once ingest is not refusing callbacks (or after a while), awaited before
        each batch is read."""
        self._settings = settings
        self._give_way = give_way
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
        self._stage = Children(metrics.processor_stage)
        self._batch_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._interrupt = asyncio.Event()  # cuts a retry wait short (revocation, stop)
        self._consumer: LogConsumer | None = None
        self._last_lag = 0.0
        self._last_expiry = clock.monotonic()
        self._commits: GroupCommit | None = None  # the consumer's, while it runs
        # Moved on by every revocation and assignment: a batch fetched before a rebalance
        # is not processed after it (see `_consume`).
        self._epoch = 0

    # --- AssignmentListener ---------------------------------------------------------------
    async def on_assigned(self, partitions: set[TopicPartition]) -> None:
        self._epoch += 1
        await self._store.load({tp for tp in partitions if tp[0] == self._raw_topic})
        logger.info("partitions assigned", partitions=sorted(p for _, p in partitions))

    async def on_revoked(self, partitions: set[TopicPartition]) -> None:
        # Wait for the batch in flight to commit before another member takes over; a
        # batch waiting to retry a record is abandoned instead of holding the handover.
        self._epoch += 1
        self._interrupt.set()
        try:
            async with self._batch_lock:
                with contextlib.suppress(LogUnavailable):
                    await self._settle()
                self._store.drop(partitions)
                for topic, partition in partitions:
                    self._forget_lag(topic, partition)
        finally:
            if not self._stopping.is_set():
                self._interrupt.clear()
        logger.info("partitions revoked", partitions=sorted(p for _, p in partitions))

    def _forget_lag(self, topic: str, partition: int) -> None:
        """A partition went to another member: its lag is not this one's to report."""
        lag = self._metrics.processor_lag
        if in_multiprocess():  # the shared files cannot drop a series: it reads 0
            lag.labels(topic, str(partition)).set(0)
        else:
            lag.remove(topic, str(partition))

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
        self._commits = GroupCommit(consumer.commit, self._committed)
        handoff = Handoff(PIPELINE_DEPTH)
        reader = self._start_reading(consumer, handoff)
        try:
            while not self._stopping.is_set():
                try:
                    async with asyncio.timeout(_FETCH_TIMEOUT_S):
                        fetched = await handoff.take()
                except TimeoutError:  # nothing came: follow-ups that are due, expiry, lag
                    fetched = Fetched(self._epoch)
                if fetched.error is not None:
                    raise fetched.error
                try:
                    overtaken = not await self._finish(consumer, fetched)
                except _Abandoned:
                    overtaken = False
                else:
                    if not overtaken:
                        if self._commits.idle:  # a commit in flight counts once done
                            self._restarts.succeeded()
                        await self._report_lag(consumer)
                        continue
                # Read again from the committed positions: this batch and the one the
                # reader began after it.
                await self._stop_reading(reader, handoff)
                async with self._batch_lock:  # after the rebalance or stop that cut it short
                    await self._settle()
                    if not self._stopping.is_set():
                        await consumer.rewind()
                if overtaken:
                    logger.info(
                        "batch fetched before a rebalance dropped; reading it again",
                        records=len(fetched.records),
                        partitions=sorted({r.partition for r in fetched.records}),
                    )
                reader = self._start_reading(consumer, handoff)
        finally:
            await self._stop_reading(reader, handoff)
            await self._settle()  # on the way out too: the last batch commits or fails

    def _start_reading(self, consumer: LogConsumer, handoff: Handoff) -> asyncio.Task[None]:
        return asyncio.create_task(
            read(
                consumer,
                handoff,
                ready=self._handler.ready,
                give_way=self._give_way,
                begin=lambda records: self._handler.begin(records, StateView(self._store)),
                epoch=lambda: self._epoch,
                batch_size=self._settings.processor_batch_size,
                fetch_timeout_s=_FETCH_TIMEOUT_S,
                now=self._clock.time,
            ),
            name="processor-reader",
        )

    @staticmethod
    async def _stop_reading(reader: asyncio.Task[None], handoff: Handoff) -> None:
        """Stop the reader and drop the batch it began; its records are read again."""
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        handoff.clear()

    async def _finish(self, consumer: LogConsumer, fetched: Fetched) -> bool:
        """Finish and hand over for commit one batch; False when a rebalance overtook it.

        Records handed over before a revocation may be finished only after it: a fetch
        can span a whole rebalance, and the loop waits for the batch lock while the
        revocation holds it. Their partitions may be another member's by then, or this
        one's again, with positions reset to the committed offsets and state reloaded
        without them. Processed against that state and committed by the new producer,
        they would be published twice (the second time when read again from the
        committed offset); such a batch is dropped instead."""
        if fetched.begun is not None:  # wait for OC without holding up a rebalance
            await fetched.begun.enriched()
        self._observe_waits(fetched)
        async with self._batch_lock:
            if fetched.records and fetched.epoch != self._epoch:
                fetched.drop()
                return False
            if self._commits is not None and not self._commits.idle and self._commits.done:
                # A failed commit surfaces now, not only when the next records come:
                # after it, nothing may arrive until it is retried.
                await self._settle()
            await self._process_batch(consumer, fetched)
            await self._expire_state(consumer)
        return True

    def _observe_waits(self, fetched: Fetched) -> None:
        """The stages a fetched batch went through before it is finished: queued in the
        log until fetched, then fetched until its look-ups are in."""
        if not fetched.records or not fetched.fetched_at:
            return
        oldest = fetched.oldest_s
        if oldest is not None:
            self._stage("queued").observe(max(0.0, fetched.fetched_at - oldest))
        self._stage("enrich").observe(max(0.0, self._clock.time() - fetched.fetched_at))

    async def _settle(self) -> None:
        """Wait for the commits in flight; a failure (LogUnavailable) surfaces here."""
        if self._commits is not None:
            await self._commits.settle()

    def _committed(self, work: Work) -> None:
        self._restarts.succeeded()
        self._count_published(work.published)
        now = time.perf_counter()
        for started in work.started:
            self._metrics.batch_duration.observe(now - started)
        commit = self._stage("commit")
        for built in work.built:
            commit.observe(now - built)

    async def _process_batch(self, consumer: LogConsumer, fetched: Fetched) -> None:
        started = time.perf_counter()
        records = fetched.records
        view = StateView(self._store)
        done = await self._handle(records, view, fetched.begun)
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
        assert self._commits is not None
        built = time.perf_counter()
        if records:
            self._stage("build").observe(built - started)
        self._commits.add(
            outputs, positions, published, started if records else None, built if records else None
        )
        if self._commits.waiting > COMMIT_BACKLOG_RECORDS:
            await self._settle()  # commits fall behind: finish no more until they caught up

    async def _handle(
        self, records: Sequence[LogRecord], view: StateView, begun: Begun | None
    ) -> list[Done]:
        """Every record handled or dead-lettered; failed records are tried again (with
        the records of their entity that waited for them) as the retry policy allows."""
        results: list[Done | None] = [None] * len(records)
        attempts = [0] * len(records)
        pending = list(range(len(records)))
        while pending:
            if begun is not None:  # the first attempt, begun by the reader
                handled = await self._handler.finish(begun, view)
                begun = None
            else:
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

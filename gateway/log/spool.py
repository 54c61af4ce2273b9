"""Kafka with a local spool: ingest keeps answering OC while Kafka is down or slow.

`SpoolingLog.append` hands records to Kafka and waits up to a deadline. If Kafka does not
confirm in time, the records go to the local SQLite spool instead, the append returns,
and from then on every append goes to the spool until the drainer has forwarded all of
it, in the original order, and deleted what Kafka confirmed. So records of one key never
overtake each other. When the spool reaches its cap, appends fail with `SpoolFull`.

A record that timed out may still reach Kafka later (the producer keeps retrying it).
The drainer therefore first waits for that in-flight attempt: if it landed, the spooled
copy is dropped instead of sent twice. Likewise, when Kafka confirmed a batch but the
spool could not delete it (a full disk), the drainer remembers how far Kafka has it and
only retries the delete. Only a crash in those windows can duplicate a raw record; the
processor's deduplication absorbs that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.aio import wait_set
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import LogUnavailable, SpoolFull
from gateway.log.base import AssignmentListener, LogConsumer, LogRecord, Position, Record
from gateway.log.kafka import KafkaLog
from gateway.log.sqlite import SqliteLog
from gateway.retry import Backoff, RetryPolicy

logger = logging.getLogger(__name__)

_DRAIN_BATCH = 500
_DRAIN_RETRY = RetryPolicy(max_retries=0, base_s=0.2, cap_s=5.0)
"""How long the drainer waits after a failed batch (Kafka or the spool failed)."""


@dataclass(frozen=True, slots=True)
class SpoolStats:
    records: int
    bytes: int
    oldest_age_s: float


class SpoolingLog:
    """A `Log` on Kafka that falls back to a local spool for appends."""

    name = "kafka"

    def __init__(
        self,
        kafka: KafkaLog,
        spool: SqliteLog,
        *,
        topics: Sequence[str],
        append_timeout_s: float,
        max_bytes: int,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.kafka = kafka
        self.spool = spool
        self._topics = list(topics)
        self._timeout_s = append_timeout_s
        self._max_bytes = max_bytes
        self._clock = clock
        self._gate = asyncio.Lock()
        self._spooling = False
        self._spool_bytes = 0
        self._full = False  # an append was refused for space and nothing drained since
        self._in_flight: dict[tuple[str, int], asyncio.Future[Any]] = {}
        self._waiting: deque[tuple[float, asyncio.Future[bool]]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        # topic -> the last spooled offset Kafka confirmed that the spool still holds
        self._forwarded: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drainer: asyncio.Task[None] | None = None
        self._stopping = False
        self.on_spooled: Callable[[int], None] = lambda count: None
        self.on_retry: Callable[[], None] = lambda: None  # a drain that failed is retried

    @property
    def spooling(self) -> bool:
        return self._spooling

    async def start(self) -> None:
        await self.spool.start()
        stats = await self.spool_stats()
        self._spool_bytes = stats.bytes
        # Records left from before a crash must leave before anything new.
        self._spooling = stats.records > 0
        if not self._spooling:
            self._drained.set()
        try:
            await self.kafka.start()
        except LogUnavailable:
            logger.warning("kafka unreachable at start; spooling until it is back")
            self._spooling = True
            self._drained.clear()
        self._drainer = asyncio.create_task(self._drain_loop(), name="spool-drainer")

    async def close(self) -> None:
        """Stop draining (finishing the batch in flight), flush the producer, close."""
        self._stopping = True
        self._wake.set()
        if self._drainer is not None:
            await self._drainer
        await self.kafka.close()
        await self.spool.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # --- appending ---------------------------------------------------------------------
    async def append(self, records: Sequence[Record]) -> list[Position]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        futures: list[asyncio.Future[Any]] = []
        async with self._gate:
            if self._spooling:
                return await self._to_spool(records, futures)
            try:
                async with asyncio.timeout_at(deadline):
                    futures = await self.kafka.queue(records)
            except (TimeoutError, LogUnavailable):
                return await self._to_spool(records, futures)
        if not futures:
            return []
        if await self._confirmed(futures, deadline):
            return [Position(m.topic, m.partition, m.offset) for m in (f.result() for f in futures)]
        # A record that missed the deadline stays in flight (the drainer checks whether it
        # landed); one that failed is spooled with the rest.
        async with self._gate:
            return await self._to_spool(records, futures)

    def _confirmed(
        self, futures: Sequence[asyncio.Future[Any]], deadline: float
    ) -> Awaitable[bool]:
        """True once Kafka confirmed every one of `futures`; False as soon as one fails or
        when `deadline` passes first. One timer serves every waiting append (appends
        share the timeout, so deadlines come in order): per append this costs a future
        and a callback per record, not a timer, a wait set and a gather."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        left = len(futures)

        def one_done(future: asyncio.Future[Any]) -> None:
            nonlocal left
            left -= 1
            if waiter.done():
                return
            if future.cancelled() or future.exception() is not None:
                waiter.set_result(False)
            elif left == 0:
                waiter.set_result(True)

        for future in futures:
            future.add_done_callback(one_done)
        self._waiting.append((deadline, waiter))
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire)
        return waiter

    def _expire(self) -> None:
        """Answer False to the appends whose deadline passed; arm for the next one."""
        self._timer = None
        now = asyncio.get_running_loop().time()
        waiting = self._waiting
        while waiting and (waiting[0][0] <= now or waiting[0][1].done()):
            _, waiter = waiting.popleft()
            if not waiter.done():
                waiter.set_result(False)
        if waiting:
            self._timer = asyncio.get_running_loop().call_at(waiting[0][0], self._expire)

    async def _to_spool(
        self, records: Sequence[Record], futures: Sequence[asyncio.Future[Any]]
    ) -> list[Position]:
        """Spool `records` (the gate is held). `futures` are Kafka attempts still open."""
        size = sum(len(r.value) for r in records)
        if self._spool_bytes + size > self._max_bytes:
            self._full = True
            raise SpoolFull(f"spool full ({self._spool_bytes} bytes)")
        positions = await self.spool.append(records)
        self._spool_bytes += size
        for position, future in zip(positions, futures, strict=False):
            self._in_flight[(position.topic, position.offset)] = future
        if not self._spooling:
            logger.warning("kafka did not confirm in time; spooling appends locally")
        self._spooling = True
        self._drained.clear()
        self.on_spooled(len(records))
        self._wake.set()
        return positions

    # --- draining ----------------------------------------------------------------------
    async def _drain_loop(self) -> None:
        backoff = Backoff(_DRAIN_RETRY, on_retry=lambda: self.on_retry())
        while not self._stopping:
            try:
                moved = await self._drain_once()
            except LogUnavailable as exc:
                delay = backoff.failed()
                logger.info("spool drain waits %.1f s (kafka or the spool failed): %s", delay, exc)
                await self._pause(delay)
                continue
            backoff.succeeded()
            if moved == 0:
                await self._pause(None)

    async def _pause(self, timeout_s: float | None) -> None:
        await wait_set(self._wake, timeout_s)
        self._wake.clear()

    async def _drain_once(self) -> int:
        """Forward one batch per topic; 0 when the spool is empty (and direct mode resumes)."""
        moved = 0
        for topic in self._topics:
            rows = await self.spool.rows_after(topic, 0, _DRAIN_BATCH)
            if rows:
                await self._forward(topic, rows)
                moved += len(rows)
        if moved == 0:
            async with self._gate:
                if self._in_flight_empty() and await self._spool_empty():
                    if self._spooling:
                        logger.warning("spool drained; appending to kafka directly again")
                    self._spooling = False
                    self._spool_bytes = 0
                    self._full = False
                    self._drained.set()
        return moved

    def _in_flight_empty(self) -> bool:
        return not self._in_flight

    async def _spool_empty(self) -> bool:
        for topic in self._topics:
            if await self.spool.rows_after(topic, 0, 1):
                return False
        return True

    async def _forward(self, topic: str, rows: list[LogRecord]) -> None:
        to_send: list[Record] = []
        forwarded = self._forwarded.get(topic, -1)
        for row in rows:
            if row.offset <= forwarded:
                continue  # in Kafka already; only its delete from the spool failed
            earlier = self._in_flight.get((topic, row.offset))
            if earlier is not None and await self._landed(earlier):
                continue
            to_send.append(
                Record(topic, row.value, row.key, row.headers, timestamp_ms=row.timestamp_ms)
            )
        if to_send:
            await self.kafka.append(to_send)
        self._forwarded[topic] = rows[-1].offset
        await self.spool.delete_through(topic, rows[-1].offset)
        del self._forwarded[topic]
        for row in rows:
            self._in_flight.pop((topic, row.offset), None)
        self._spool_bytes = max(0, self._spool_bytes - sum(len(r.value) for r in rows))
        self._full = False

    @staticmethod
    async def _landed(future: asyncio.Future[Any]) -> bool:
        """Wait for an earlier direct attempt to end; True if Kafka confirmed it."""
        with contextlib.suppress(Exception):
            await future
            return True
        return False

    async def wait_drained(self, timeout_s: float) -> bool:
        """Wait until the spool is empty; False if it is not within `timeout_s`."""
        return await wait_set(self._drained, timeout_s)

    async def spool_stats(self) -> SpoolStats:
        records = size = 0
        oldest: int | None = None
        for topic in self._topics:
            count, nbytes, first = await self.spool.stats(topic)
            records += count
            size += nbytes
            if first is not None:
                oldest = first if oldest is None else min(oldest, first)
        age = 0.0 if oldest is None else max(0.0, self._clock.time() - oldest / 1000)
        return SpoolStats(records, size, age)

    # --- the rest of the Log port is Kafka's ---------------------------------------------
    def consumer(
        self, group: str, topics: Sequence[str], listener: AssignmentListener | None = None
    ) -> LogConsumer:
        return self.kafka.consumer(group, topics, listener)

    def read(
        self,
        topic: str,
        *,
        partitions: Sequence[int] | None = None,
        since_ms: int | None = None,
    ) -> AsyncIterator[LogRecord]:
        return self.kafka.read(topic, partitions=partitions, since_ms=since_ms)

    async def writable(self) -> bool:
        if not self._spooling and await self.kafka.writable():
            return True
        return not self._full and await self.spool.writable()


async def forward_leftovers(
    kafka: KafkaLog, paths: Sequence[Path], topics: Sequence[str], batch: int = _DRAIN_BATCH
) -> None:
    """Forward to Kafka, in order, what spool files no process owns any more hold (the
    spools of ingest workers that no longer run), then delete them; until Kafka takes
    them, try again with the shared backoff."""
    backoff = Backoff(_DRAIN_RETRY)
    for path in paths:
        while True:
            try:
                moved = await _forward_file(kafka, path, topics, batch)
            except LogUnavailable as exc:
                delay = backoff.failed()
                logger.info("leftover spool %s waits for kafka: %s", path.name, exc)
                await asyncio.sleep(delay)
                continue
            backoff.succeeded()
            logger.warning("forwarded %d records left in %s", moved, path.name)
            for leftover in (path, *path.parent.glob(path.name + "-*")):
                leftover.unlink(missing_ok=True)
            break


async def _forward_file(kafka: KafkaLog, path: Path, topics: Sequence[str], batch: int) -> int:
    spool = SqliteLog(path)
    await spool.start()
    moved = 0
    try:
        for topic in topics:
            while rows := await spool.rows_after(topic, 0, batch):
                await kafka.append(
                    [
                        Record(topic, r.value, r.key, r.headers, timestamp_ms=r.timestamp_ms)
                        for r in rows
                    ]
                )
                await spool.delete_through(topic, rows[-1].offset)
                moved += len(rows)
    finally:
        await spool.close()
    return moved

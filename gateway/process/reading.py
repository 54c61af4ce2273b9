"""The processor's reader: fetches the next batch and begins it while the one before it
waits for OC.

A batch spends most of its time waiting for its look-ups (OC answers in tens of
milliseconds, and its budget paces the calls). The reader runs beside the processor's
loop: once the loop has taken the batch before, it waits until OC's budget could serve
a new batch's look-ups at once (`Handler.ready`), fetches what arrived meanwhile, reads
it and sends its look-ups (`Handler.begin`), and hands it over (`Handoff`). So batches
follow each other at the pace of OC's budget, each one carrying whatever came while the
budget was spent, and a record waits for at most one batch before its own instead of
the whole of the one in progress plus its own.

Only the loop commits, rewinds and touches state; the reader only fetches. Each batch
carries the `epoch` it was fetched in (the processor moves it on at every rebalance),
so the loop can drop a batch a rebalance overtook.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from gateway.log.base import LogConsumer, LogRecord
from gateway.process.handler import Begun

READY_WAIT_S: Final = 0.25
"""Longest the reader waits for OC's budget before it begins a batch anyway (its
look-ups then queue for the budget, and the enrichment deadline still holds)."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """One fetch: its records (none when the fetch timed out) and what was begun of them,
    or the error that ended the reader."""

    epoch: int
    records: Sequence[LogRecord] = ()
    begun: Begun | None = None
    error: Exception | None = None
    fetched_at: float = 0.0
    """Unix time of the fetch (for the time its records queued before it)."""

    @property
    def oldest_s(self) -> float | None:
        """Unix time its oldest record was written to the log, if the log says."""
        stamps = [r.timestamp_ms for r in self.records if r.timestamp_ms > 0]
        return min(stamps) / 1000 if stamps else None

    def drop(self) -> None:
        """Not to be finished: stop waiting for its look-ups."""
        if self.begun is not None:
            self.begun.cancel()


class Handoff:
    """Batches from the reader to the loop, in order, at most `depth` of them begun and
    not yet taken."""

    def __init__(self, depth: int = 1) -> None:
        self._depth = depth
        self._items: deque[Fetched] = deque()
        self._full = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()

    def put(self, item: Fetched) -> None:
        self._items.append(item)
        self._full.set()
        if len(self._items) >= self._depth:
            self.room.clear()

    async def take(self) -> Fetched:
        await self._full.wait()
        item = self._items.popleft()
        if not self._items:
            self._full.clear()
        self.room.set()
        return item

    def clear(self) -> None:
        """Drop what waits to be taken."""
        while self._items:
            self._items.popleft().drop()
        self._full.clear()
        self.room.set()


Begin = Callable[[Sequence[LogRecord]], Awaitable[Begun]]


async def read(
    consumer: LogConsumer,
    handoff: Handoff,
    *,
    ready: Callable[[], Awaitable[None]],
    give_way: Callable[[], Awaitable[None]] | None = None,
    begin: Begin,
    epoch: Callable[[], int],
    batch_size: int,
    fetch_timeout_s: float,
    now: Callable[[], float] = time.time,
) -> None:
    """Fetch and begin batches until cancelled (an empty fetch is not handed over); a
    failure (LogUnavailable from the fetch, or a surprise) is handed over as the last
    item, for the loop to raise. `give_way` returns when the next batch may begin as far
    as the rest of the replica is concerned (its ingest is not overloaded)."""
    while True:
        await handoff.room.wait()  # the loop took enough of the batches before
        if give_way is not None:  # waits while the replica's ingest refuses callbacks
            await give_way()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(READY_WAIT_S):
                await ready()
        fetched_in = epoch()
        try:
            records = await consumer.fetch(batch_size, fetch_timeout_s)
            if not records:
                continue
            fetched_at = now()
            # A fetch a rebalance overtook (the first one of a new member, too) is only
            # handed over for the loop to drop: nothing of it is read or asked of OC.
            begun = await begin(records) if epoch() == fetched_in else None
        except Exception as exc:
            handoff.put(Fetched(fetched_in, error=exc))
            return
        handoff.put(Fetched(fetched_in, records, begun, fetched_at=fetched_at))

"""Finding an entity's typed events on their topic without reading the partition through.

The processor publishes a raw record's events after it received that record, and commits
the raw records of one partition in order; an entity's raw records share a partition,
and its events share one typed partition. So the events of delivery i are after its
raw record's time, and before the events of any later delivery of the entity. Each
delivery's events are looked for in that window only: a read from its raw record's time
that stops once they are found, or once an event of a later delivery shows they will
not come (a missing event of the last delivery is looked for to the end). An event that
promises a follow-up (`enrichment.followUp`) is followed by a read from its own time
until its `*.enriched` event, unless the DLQ says the follow-up was given up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from gateway.log.base import LogRecord
from gateway.trace.found import Event
from gateway.trace.source import Enough, Source

CLOCK_SKEW_MS: Final = 60_000
"""How much earlier than its raw record an event may be stamped (clocks of replicas)."""
MAX_WINDOWS: Final = 32
"""More deliveries than this (a busy stock level): one read from the first instead."""
READS_AT_ONCE: Final = 8


@dataclass(frozen=True, slots=True)
class Wanted:
    """The events one delivery's decisions imply on one topic."""

    since_ms: int
    ids: frozenset[str]


def _ids(found: Sequence[LogRecord]) -> set[str]:
    return {(r.header("ce_id") or b"").decode() for r in found}


def _window(wanted: Wanted, later: frozenset[str]) -> Enough:
    def enough(found: Sequence[LogRecord]) -> bool:
        ids = _ids(found)
        return wanted.ids <= ids or bool(ids & later)

    return enough


def _everything(ids: frozenset[str]) -> Enough:
    return lambda found: ids <= _ids(found)


def _enriched(event_id: str) -> Enough:
    return lambda found: any(Event.of(r).enriches == event_id for r in found)


async def find_events(
    source: Source,
    topic: str,
    key: bytes,
    wanted: Sequence[Wanted],
    given_up: frozenset[str],
) -> tuple[list[LogRecord], int | None]:
    """The entity's events on `topic` that `wanted` (in raw order) asks for, and their
    follow-ups; also the earliest time read from (None: nothing was read)."""
    wanted = [w for w in wanted if w.ids]
    if not wanted:
        return [], None
    gate = asyncio.Semaphore(READS_AT_ONCE)

    async def read(since_ms: int, enough: Enough) -> list[LogRecord]:
        async with gate:
            return await source.keyed(topic, key, max(0, since_ms), enough=enough)

    if len(wanted) > MAX_WINDOWS:
        every = frozenset().union(*(w.ids for w in wanted))
        reads = [read(wanted[0].since_ms - CLOCK_SKEW_MS, _everything(every))]
    else:
        reads = []
        for i, w in enumerate(wanted):
            later = frozenset().union(*(x.ids for x in wanted[i + 1 :]))
            reads.append(read(w.since_ms - CLOCK_SKEW_MS, _window(w, later)))
    found = _unique([r for batch in await asyncio.gather(*reads) for r in batch])
    events = [Event.of(r) for r in found]
    completed = {e.enriches for e in events if e.enriches}
    owed = [
        (r, e)
        for r, e in zip(found, events, strict=True)
        if e.follow_up and e.ce_id not in completed and e.ce_id not in given_up
    ]
    if owed:
        more = await asyncio.gather(*(read(r.timestamp_ms, _enriched(e.ce_id)) for r, e in owed))
        found = _unique(found + [r for batch in more for r in batch])
    return found, wanted[0].since_ms - CLOCK_SKEW_MS


def _unique(records: list[LogRecord]) -> list[LogRecord]:
    seen: dict[tuple[int, int], LogRecord] = {}
    for record in records:
        seen.setdefault((record.partition, record.offset), record)
    return sorted(seen.values(), key=lambda r: (r.partition, r.offset))

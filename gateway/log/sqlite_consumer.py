"""A consumer of the embedded log: it owns partition 0 of every topic it reads, and
commits its outputs and positions in one SQLite transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from gateway.log.base import AssignmentListener, LogRecord, Record, TopicPartition

if TYPE_CHECKING:
    from gateway.log.sqlite import SqliteLog

_POLL_S = 0.25  # how often a waiting consumer looks for rows written by other processes


class SqliteConsumer:
    """A consumer of the embedded log; it owns partition 0 of every topic it reads."""

    def __init__(
        self,
        log: SqliteLog,
        group: str,
        topics: Sequence[str],
        listener: AssignmentListener | None,
    ) -> None:
        self._log = log
        self._group = group
        self._topics = list(topics)
        self._listener = listener
        self._next: dict[str, int] = {}

    @property
    def assignment(self) -> set[TopicPartition]:
        return {(topic, 0) for topic in self._topics}

    async def start(self) -> None:
        await self.rewind()
        if self._listener is not None:
            await self._listener.on_assigned(self.assignment)

    async def stop(self) -> None:
        if self._listener is not None:
            await self._listener.on_revoked(self.assignment)

    async def rewind(self) -> None:
        for topic in self._topics:
            self._next[topic] = await self._log.committed(self._group, topic)

    async def fetch(self, max_records: int, timeout_s: float) -> list[LogRecord]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            batch: list[LogRecord] = []
            for topic in self._topics:
                room = max_records - len(batch)
                if room <= 0:
                    break
                rows = await self._log.rows_after(topic, self._next[topic], room)
                if rows:
                    self._next[topic] = rows[-1].offset + 1
                    batch.extend(rows)
            remaining = deadline - asyncio.get_running_loop().time()
            if batch or remaining <= 0:
                return batch
            await self._log.wait_for_append(min(remaining, _POLL_S))

    async def commit(
        self,
        outputs: Mapping[TopicPartition, Sequence[Record]],
        positions: Mapping[TopicPartition, int],
    ) -> None:
        # One SQLite transaction covers every partition at once.
        flat = [record for records in outputs.values() for record in records]
        await self._log.commit_group(self._group, flat, positions)

    async def lag(self) -> dict[TopicPartition, int]:
        result: dict[TopicPartition, int] = {}
        for topic in self._topics:
            end = await self._log.end_offset(topic)
            committed = await self._log.committed(self._group, topic)
            result[(topic, 0)] = max(0, end - committed)
        return result

"""Group commit: the batches finished while a commit runs go together in the next one.

A commit costs about the same for one record as for hundreds (on Kafka, a transaction
per input partition: five requests and a marker per partition written), so batches
are not committed one by one: while one commit runs, the batches finished meanwhile
gather, and the next commit takes them all, in order. When records come slowly each
batch commits on its own, at once; when they come fast, or a commit is slow,
transactions grow instead of queueing. Commits stay in order and one at a time; each
batch's state was applied before it was added (the next batch builds on it), so a
failed commit leaves nothing for later ones to build on: the processor rebuilds its
consumer and state, and reads the records again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gateway.log.base import Record, TopicPartition

Commit = Callable[
    [Mapping[TopicPartition, Sequence[Record]], Mapping[TopicPartition, int]], Awaitable[None]
]


@dataclass
class Work:
    """What one commit carries: the outputs and positions of one or more batches."""

    outputs: dict[TopicPartition, list[Record]] = field(default_factory=dict)
    positions: dict[TopicPartition, int] = field(default_factory=dict)
    published: list[tuple[str, datetime]] = field(default_factory=list)
    started: list[float] = field(default_factory=list)
    """When each batch with records began (for its duration once committed)."""
    built: list[float] = field(default_factory=list)
    """When each batch with records was handed over (for its commit stage)."""
    records: int = 0

    def add(
        self,
        outputs: Mapping[TopicPartition, Sequence[Record]],
        positions: Mapping[TopicPartition, int],
        published: Sequence[tuple[str, datetime]],
        started: float | None,
        built: float | None = None,
    ) -> None:
        for tp, records in outputs.items():
            self.outputs.setdefault(tp, []).extend(records)
            self.records += len(records)
        self.positions.update(positions)  # a later batch's position is further on
        self.published.extend(published)
        if started is not None:
            self.started.append(started)
        if built is not None:
            self.built.append(built)


class GroupCommit:
    """Commits added work, one commit at a time, gathering what is added meanwhile."""

    def __init__(self, commit: Commit, committed: Callable[[Work], None]) -> None:
        self._commit = commit
        self._committed = committed
        self._pending: Work | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def idle(self) -> bool:
        """Nothing added is waiting or being committed."""
        return self._task is None

    @property
    def done(self) -> bool:
        """Whatever was added has been committed, or the commit failed (settle() says)."""
        return self._task is None or self._task.done()

    @property
    def waiting(self) -> int:
        """Output records added and not yet in a commit that started."""
        return self._pending.records if self._pending is not None else 0

    def add(
        self,
        outputs: Mapping[TopicPartition, Sequence[Record]],
        positions: Mapping[TopicPartition, int],
        published: Sequence[tuple[str, datetime]] = (),
        started: float | None = None,
        built: float | None = None,
    ) -> None:
        """Commit this after everything added before; a commit starts now if none runs.
        `started` and `built` (perf_counter) are when the batch began and was handed over."""
        if self._pending is None:
            self._pending = Work()
        self._pending.add(outputs, positions, published, started, built)
        task = self._task
        if task is None or (task.done() and not task.cancelled() and task.exception() is None):
            # (after a failure nothing more starts: settle() raises it and drops the rest)
            self._task = asyncio.create_task(self._run(), name="processor-commit")

    async def settle(self) -> None:
        """Wait until everything added is committed; a commit's failure is raised here
        (and whatever waited behind it is dropped)."""
        task = self._task
        if task is None:
            return
        try:
            await asyncio.shield(task)
        except BaseException:
            if task.done():
                self._task = None
                self._pending = None
            raise
        self._task = None

    async def _run(self) -> None:
        while self._pending is not None:
            work, self._pending = self._pending, None
            await self._commit(work.outputs, work.positions)
            self._committed(work)

"""Group commit: what is added while a commit runs goes, in order, into the next one; a
failure stops everything behind it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from gateway.log.base import Record, TopicPartition
from gateway.process.commits import GroupCommit, Work
from tests.clocks import until

P0: TopicPartition = ("raw", 0)
P1: TopicPartition = ("raw", 1)


class Log:
    """Commits held until the test lets each one through (or fails it)."""

    def __init__(self) -> None:
        self.commits: list[tuple[dict[TopicPartition, list[bytes]], dict[TopicPartition, int]]] = []
        self.gates: list[asyncio.Future[None]] = []

    async def commit(
        self,
        outputs: Mapping[TopicPartition, Sequence[Record]],
        positions: Mapping[TopicPartition, int],
    ) -> None:
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.gates.append(gate)
        await gate
        values = {tp: [r.value for r in records] for tp, records in outputs.items()}
        self.commits.append((values, dict(positions)))


def out(*values: bytes) -> list[Record]:
    return [Record("out", v) for v in values]


async def test_batches_added_during_a_commit_go_together_in_the_next_one() -> None:
    log, done = Log(), list[Work]()
    commits = GroupCommit(log.commit, done.append)
    commits.add({P0: out(b"a")}, {P0: 1}, started=1.0)
    await until(lambda: len(log.gates) == 1)  # the first commit runs...
    commits.add({P0: out(b"b"), P1: out(b"x")}, {P0: 2, P1: 1}, started=2.0)
    commits.add({P0: out(b"c")}, {P0: 3}, started=3.0)  # ...while two more batches come
    assert commits.waiting == 3
    log.gates[0].set_result(None)
    await until(lambda: len(log.gates) == 2)
    assert commits.waiting == 0
    log.gates[1].set_result(None)
    await commits.settle()
    assert log.commits == [
        ({P0: [b"a"]}, {P0: 1}),
        ({P0: [b"b", b"c"], P1: [b"x"]}, {P0: 3, P1: 1}),
    ]
    assert [w.started for w in done] == [[1.0], [2.0, 3.0]]
    assert commits.idle


async def test_a_batch_added_when_nothing_runs_commits_at_once() -> None:
    log = Log()
    commits = GroupCommit(log.commit, lambda work: None)
    commits.add({P0: out(b"a")}, {P0: 1})
    await until(lambda: len(log.gates) == 1)
    log.gates[0].set_result(None)
    await until(lambda: commits.done)
    commits.add({P0: out(b"b")}, {P0: 2})  # after the first finished: a commit of its own
    await until(lambda: len(log.gates) == 2)
    log.gates[1].set_result(None)
    await commits.settle()
    assert [c[1] for c in log.commits] == [{P0: 1}, {P0: 2}]


async def test_a_failed_commit_is_raised_and_nothing_behind_it_commits() -> None:
    log, done = Log(), list[Work]()
    commits = GroupCommit(log.commit, done.append)
    commits.add({P0: out(b"a")}, {P0: 1})
    await until(lambda: len(log.gates) == 1)
    commits.add({P0: out(b"b")}, {P0: 2})
    log.gates[0].set_exception(RuntimeError("broker gone"))
    await until(lambda: commits.done)
    commits.add({P0: out(b"c")}, {P0: 3})  # added after the failure, before it surfaced
    with pytest.raises(RuntimeError, match="broker gone"):
        await commits.settle()
    assert log.commits == []
    assert done == []
    assert len(log.gates) == 1  # neither b nor c was ever committed
    assert commits.idle
    assert commits.waiting == 0


def test_work_keeps_each_batchs_times_for_its_stages() -> None:
    work = Work()
    work.add({P0: out(b"a")}, {P0: 1}, (), started=1.0, built=1.5)
    work.add({P1: out(b"b")}, {P1: 1}, (), started=None, built=None)  # follow-ups only
    work.add({P0: out(b"c")}, {P0: 2}, (), started=2.0, built=2.25)
    assert (work.started, work.built, work.records) == ([1.0, 2.0], [1.5, 2.25], 3)

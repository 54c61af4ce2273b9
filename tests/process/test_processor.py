"""The processor loop on its own: the embedded log, a handler of the test's making behind
the processor's port, and a fake clock for the retry waits. Surprises are retried with
the shared backoff and then dead-lettered; a stop cuts a retry wait short and commits
nothing of the abandoned batch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.log.base import AssignmentListener, LogRecord, Record
from gateway.log.sqlite import SqliteLog
from gateway.log.sqlite_consumer import SqliteConsumer
from gateway.ops.metrics import Metrics
from gateway.process.dlq import H_ATTEMPTS, H_REASON
from gateway.process.enrich import Enriched, Need
from gateway.process.handler import Begun, Done, Failed, Handled, WholeBatch
from gateway.process.processor import RECORD_RETRY_CAP_S, Processor
from gateway.process.state import StateStore, StateView
from gateway.settings import Settings
from tests.clocks import FakeClock
from tests.conftest import SettingsFactory
from tests.waiting import wait_for


@dataclass
class Flaky(WholeBatch):
    """Fails each record `failures` times, then copies it to `out` (the port's contract:
    one result per record, state untouched on failure)."""

    out: str
    failures: int
    attempts: dict[int, int] = field(default_factory=dict)

    async def handle(self, records: Sequence[LogRecord], view: StateView) -> list[Handled]:
        results: list[Handled] = []
        for record in records:
            tried = self.attempts[record.offset] = self.attempts.get(record.offset, 0) + 1
            if tried <= self.failures:
                results.append(Failed(RuntimeError(f"surprise {tried}")))
            else:
                results.append(Done([Record(self.out, record.value, record.key)]))
        return results

    async def follow_ups(self, view: StateView, now_ms: int) -> dict[int, list[Record]]:
        return {}


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings(processor_max_attempts=3)


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[SqliteLog]:
    log = SqliteLog(tmp_path / "log.sqlite3")
    await log.start()
    try:
        yield log
    finally:
        await log.close()


async def topic(log: SqliteLog, name: str) -> list[LogRecord]:
    return [r async for r in log.read(name)]


async def run(processor: Processor) -> asyncio.Task[None]:
    return asyncio.create_task(processor.run())


async def test_a_surprise_is_retried_on_the_clock_and_then_goes_through(
    settings: Settings, log: SqliteLog
) -> None:
    clock = FakeClock()
    handler = Flaky("out", failures=2)
    await log.append([Record(settings.topic_raw, b"v", b"k")])
    metrics = Metrics()
    processor = Processor(settings, log, StateStore(log, "state"), handler, metrics, clock)
    task = await run(processor)
    try:
        for attempt in (1, 2):
            await wait_for(lambda: clock.sleepers == 1, timeout_s=10)
            wait = clock.next_wake()
            assert wait is not None
            assert wait <= RECORD_RETRY_CAP_S
            assert handler.attempts[0] == attempt
            clock.advance(wait)
        await wait_for(lambda: _count(log, "out", 1), timeout_s=10)
    finally:
        await processor.stop()
        await task
    assert handler.attempts[0] == 3
    assert await topic(log, settings.topic_dlq) == []
    retried = metrics.registry.get_sample_value(
        "gateway_retries_total", {"operation": "processor_record"}
    )
    assert retried == 2


async def test_what_still_fails_after_its_attempts_is_dead_lettered(
    settings: Settings, log: SqliteLog
) -> None:
    clock = FakeClock()
    handler = Flaky("out", failures=10)
    await log.append([Record(settings.topic_raw, b"v", b"k")])
    processor = Processor(settings, log, StateStore(log, "state"), handler, Metrics(), clock)
    task = await run(processor)
    try:
        for _ in range(2):
            await wait_for(lambda: clock.sleepers == 1, timeout_s=10)
            clock.advance(clock.next_wake() or 0)
        await wait_for(lambda: _count(log, settings.topic_dlq, 1), timeout_s=10)
    finally:
        await processor.stop()
        await task
    [dead] = await topic(log, settings.topic_dlq)
    assert dead.header(H_ATTEMPTS) == b"3"
    assert (dead.header(H_REASON) or b"").startswith(b"unexpected_error: RuntimeError: surprise 3")
    assert await topic(log, "out") == []


async def test_a_stop_cuts_a_retry_wait_short_and_commits_nothing(
    settings: Settings, log: SqliteLog
) -> None:
    clock = FakeClock()
    handler = Flaky("out", failures=1)
    await log.append([Record(settings.topic_raw, b"v", b"k")])
    processor = Processor(settings, log, StateStore(log, "state"), handler, Metrics(), clock)
    task = await run(processor)
    await wait_for(lambda: clock.sleepers == 1, timeout_s=10)
    await processor.stop()  # the fake clock never moves: only the stop ends the wait
    await asyncio.wait_for(task, timeout=10)
    assert await topic(log, "out") == []
    assert await log.committed(settings.kafka_consumer_group, settings.topic_raw) == 0
    # The next processor reads the record again and, the surprise gone, publishes it.
    again = Processor(settings, log, StateStore(log, "state"), handler, Metrics(), clock)
    second = await run(again)
    try:
        await wait_for(lambda: _count(log, "out", 1), timeout_s=10)
    finally:
        await again.stop()
        await second


class RebalancedOnce(SqliteConsumer):
    """The embedded consumer, put through one rebalance at the moment a Kafka member can
    meet one: its first fetch has handed records over, and before the loop gets to them
    its partitions are revoked and assigned back, with positions reset to the committed
    offsets (what aiokafka does to a partition it is given again)."""

    rebalanced = False

    async def fetch(self, max_records: int, timeout_s: float) -> list[LogRecord]:
        records = await super().fetch(max_records, timeout_s)
        if records and not RebalancedOnce.rebalanced and self._listener is not None:
            RebalancedOnce.rebalanced = True
            await self._listener.on_revoked(self.assignment)
            await self.rewind()
            await self._listener.on_assigned(self.assignment)
        return records


class RebalancingLog(SqliteLog):
    def consumer(
        self, group: str, topics: Sequence[str], listener: AssignmentListener | None = None
    ) -> SqliteConsumer:
        return RebalancedOnce(self, group, topics, listener)


async def test_a_batch_a_rebalance_overtook_is_read_again_not_published_twice(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RebalancedOnce, "rebalanced", False)
    log = RebalancingLog(tmp_path / "log.sqlite3")
    await log.start()
    try:
        await log.append([Record(settings.topic_raw, f"v{i}".encode(), b"k") for i in range(5)])
        handler = Flaky("out", failures=0)
        processor = Processor(settings, log, StateStore(log, "state"), handler, Metrics())
        task = await run(processor)
        try:
            await wait_for(lambda: _committed(log, settings, 5), timeout_s=10)
            # One more record: once it is committed, whatever was read twice was, too.
            await log.append([Record(settings.topic_raw, b"v5", b"k")])
            await wait_for(lambda: _committed(log, settings, 6), timeout_s=10)
        finally:
            await processor.stop()
            await task
        assert RebalancedOnce.rebalanced
        assert [r.value for r in await topic(log, "out")] == [f"v{i}".encode() for i in range(6)]
    finally:
        await log.close()


async def _committed(log: SqliteLog, settings: Settings, expected: int) -> bool:
    return await log.committed(settings.kafka_consumer_group, settings.topic_raw) == expected


async def _count(log: SqliteLog, name: str, expected: int) -> bool:
    return len(await topic(log, name)) == expected


class HeldOc(WholeBatch):
    """Copies each record to `out`; a batch's look-ups (begun by the reader) are answered
    only when the test releases them, one batch at a time, and the budget is ready only
    when the test says so."""

    def __init__(self) -> None:
        self.begun: list[list[bytes]] = []
        self.answers: list[asyncio.Future[Mapping[Need, Enriched] | None]] = []
        self.budget = asyncio.Event()
        self.budget.set()
        self.waiting = 0  # readers waiting for the budget

    async def ready(self) -> None:
        self.waiting += 1
        try:
            await self.budget.wait()
        finally:
            self.waiting -= 1

    async def begin(self, records: Sequence[LogRecord], view: StateView) -> Begun:
        self.begun.append([r.value for r in records])
        answer: asyncio.Future[Mapping[Need, Enriched] | None] = (
            asyncio.get_running_loop().create_future()
        )
        self.answers.append(answer)
        return Begun(records, [], answer)

    async def handle(self, records: Sequence[LogRecord], view: StateView) -> list[Handled]:
        return [Done([Record("out", r.value, r.key)]) for r in records]

    async def follow_ups(self, view: StateView, now_ms: int) -> dict[int, list[Record]]:
        return {}


async def test_the_next_batch_begins_while_one_waits_for_oc_and_commits_after_it(
    make_settings: SettingsFactory, log: SqliteLog
) -> None:
    settings = make_settings(processor_batch_size=2)
    handler = HeldOc()
    handler.budget.clear()
    raw = settings.topic_raw
    await log.append([Record(raw, b"a", b"k"), Record(raw, b"b", b"k")])
    processor = Processor(settings, log, StateStore(log, "state"), handler, Metrics())
    task = await run(processor)
    try:
        await wait_for(lambda: handler.waiting == 1, timeout_s=10)
        assert handler.begun == []  # no batch begins before OC's budget has room
        handler.budget.set()
        await wait_for(lambda: handler.begun == [[b"a", b"b"]], timeout_s=10)
        handler.budget.clear()  # OC's budget is spent again: the next batch waits for it
        await wait_for(lambda: handler.waiting == 1, timeout_s=10)
        await log.append([Record(raw, b"c", b"k"), Record(raw, b"d", b"k")])
        handler.budget.set()  # and begins, with what came meanwhile, once there is room
        await wait_for(lambda: handler.begun == [[b"a", b"b"], [b"c", b"d"]], timeout_s=10)
        assert await topic(log, "out") == []  # nothing is finished before its look-ups
        handler.answers[1].set_result({})  # the later batch's answers come first
        handler.answers[0].set_result({})
        await wait_for(lambda: _count(log, "out", 4), timeout_s=10)
    finally:
        for answer in handler.answers:  # so that the processor can stop, whatever failed
            if not answer.done():
                answer.set_result({})
        await processor.stop()
        await task
    assert [r.value for r in await topic(log, "out")] == [b"a", b"b", b"c", b"d"]
    assert await log.committed(settings.kafka_consumer_group, raw) == 4


async def test_no_batch_is_read_while_ingest_in_the_process_asks_to_go_first(
    settings: Settings, log: SqliteLog
) -> None:
    calm = asyncio.Event()
    asked = 0

    async def give_way() -> None:
        nonlocal asked
        asked += 1
        await calm.wait()

    raw = settings.topic_raw
    await log.append([Record(raw, b"a", b"k"), Record(raw, b"b", b"k")])
    handler = Flaky(out="out", failures=0)
    processor = Processor(
        settings, log, StateStore(log, "state"), handler, Metrics(), give_way=give_way
    )
    task = await run(processor)
    try:
        await wait_for(lambda: asked == 1, timeout_s=10)
        assert handler.attempts == {}  # the reader waits before it fetches
        calm.set()
        await wait_for(lambda: _count(log, "out", 2), timeout_s=10)
    finally:
        calm.set()
        await processor.stop()
        await task
    assert [r.value for r in await topic(log, "out")] == [b"a", b"b"]

"""Kafka consumers through rebalances on a real broker: each member holds exactly one
transactional producer per partition the group assigned it, whatever happens around a
rebalance (a listener that fails, a stop in the middle of one, a stop cut short), and
nothing a consumer opened outlives the log.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from gateway.errors import LogUnavailable
from gateway.log.base import Record, TopicPartition
from gateway.log.kafka import KafkaConsumer, KafkaLog
from gateway.log.kafka import consumer as kafka_consumer
from gateway.settings import Settings
from tests.conftest import SettingsFactory
from tests.helpers import wait_for

pytestmark = pytest.mark.kafka
PARTITIONS = 6


class Recording:
    """An assignment listener that notes the calls and can be told to fail or to hold."""

    def __init__(self, *, fail_on_revoke: bool = False) -> None:
        self.fail_on_revoke = fail_on_revoke
        self.assigned = asyncio.Event()
        self.hold: asyncio.Event | None = None  # on_assigned waits for it when set

    async def on_assigned(self, partitions: set[TopicPartition]) -> None:
        self.assigned.set()
        if self.hold is not None:
            async with asyncio.timeout(30):
                await self.hold.wait()

    async def on_revoked(self, partitions: set[TopicPartition]) -> None:
        if self.fail_on_revoke and partitions:
            raise RuntimeError("listener failed on revoke")


@pytest.fixture
async def settings(make_settings: SettingsFactory, kafka_bootstrap: str) -> Settings:
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap, kafka_partitions=PARTITIONS)
    log = KafkaLog(settings, topics=[settings.topic_raw])
    await log.start()
    await log.close()
    return settings


@contextlib.asynccontextmanager
async def started_log(settings: Settings) -> AsyncIterator[KafkaLog]:
    log = KafkaLog(settings)
    await log.start()
    try:
        yield log
    finally:
        await log.close()


async def join(
    log: KafkaLog, settings: Settings, listener: Recording | None = None
) -> KafkaConsumer:
    consumer = log.consumer(settings.kafka_consumer_group, [settings.topic_raw], listener)
    await consumer.start()
    return consumer


def settled(*logs: KafkaLog) -> Callable[[], Awaitable[bool]]:
    """Every partition is assigned once across the logs' members, and each log holds one
    producer for each partition its members were assigned, no more."""

    async def probe() -> bool:
        held = [log.holdings() for log in logs]
        assigned = sorted(tp for h in held for tp in h.partitions)
        return len(assigned) == PARTITIONS == len(set(assigned)) and all(
            h.producers == h.partitions and not h.starting for h in held
        )

    return probe


def holding(
    log: KafkaLog, producers: int = PARTITIONS, consumers: int | None = None
) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        held = log.holdings()
        started = len(held.producers) == producers and not held.starting
        return started and consumers in (None, held.consumers)

    return probe


async def test_members_hold_one_producer_per_assigned_partition_through_rebalances(
    settings: Settings,
) -> None:
    async with started_log(settings) as mine, started_log(settings) as theirs:
        subject = await join(mine, settings)
        others: list[KafkaConsumer] = []
        sizes = []
        for step in ("join", "join", "join", "leave", "join", "leave", "leave", "leave"):
            if step == "join":
                others.append(await join(theirs, settings))
            else:
                await others.pop(0).stop()
            await wait_for(settled(mine, theirs), timeout_s=90)
            held = mine.holdings()
            assert held.consumers == 1
            assert held.producers == held.partitions == tuple(sorted(subject.assignment()))
            assert theirs.holdings().consumers == len(others)
            sizes.append(len(held.partitions))
        assert sizes[-1] == PARTITIONS  # alone again: it took every partition back
        assert min(sizes) < PARTITIONS  # and it did give some away on the way
        await subject.stop()
        assert mine.holdings().consumers == 0
        assert mine.holdings().producers == ()


async def test_a_listener_failing_on_revoke_still_releases_and_breaks_the_consumer(
    settings: Settings,
) -> None:
    async with started_log(settings) as mine, started_log(settings) as theirs:
        listener = Recording(fail_on_revoke=True)
        subject = await join(mine, settings, listener)
        await wait_for(holding(mine), timeout_s=60)
        other = await join(theirs, settings)
        await wait_for(settled(mine, theirs), timeout_s=90)
        assert len(mine.holdings().producers) < PARTITIONS  # the revoked ones were closed
        with pytest.raises(LogUnavailable, match="partition assignment failed"):
            await subject.fetch(10, 0.1)  # its owner now rebuilds it
        await subject.stop()
        await other.stop()
        assert mine.holdings().producers == theirs.holdings().producers == ()


async def test_stop_during_an_assignment_closes_what_the_assignment_opened(
    settings: Settings,
) -> None:
    async with started_log(settings) as log:
        listener = Recording()
        listener.hold = asyncio.Event()
        subject = await join(log, settings, listener)
        await asyncio.wait_for(listener.assigned.wait(), timeout=60)
        assert len(log.holdings().producers) == PARTITIONS  # started before on_assigned
        stopping = asyncio.create_task(subject.stop())
        await asyncio.sleep(0)  # let stop() begin while the assignment is still running
        assert not stopping.done()
        listener.hold.set()
        await asyncio.wait_for(stopping, timeout=60)
        assert log.holdings().consumers == 0
        assert log.holdings().producers == ()


async def _group_members(settings: Settings) -> tuple[str, list[str]]:
    """The group's state and its members' ids, as the broker sees them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([settings.kafka_consumer_group])
    finally:
        await admin.close()
    [(_, _, state, _, _, members, *_)] = response.groups
    return state, [member[0] for member in members]


async def test_a_takeover_longer_than_the_session_timeout_keeps_the_member_in_the_group(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Loading a large state can outlast the session timeout. aiokafka sends no heartbeat
    # while its assignment callback runs, so a takeover done inside it would get the
    # member evicted, and every rebalance after it would do the same. The takeover runs
    # beside the heartbeats instead; its partitions give no record until it is done.
    session_s = 6.0  # the broker's least session timeout (group.min.session.timeout.ms)
    monkeypatch.setattr(kafka_consumer, "_SESSION_TIMEOUT_MS", int(session_s * 1000))
    async with started_log(settings) as log:
        await log.append([Record(settings.topic_raw, b"v", f"k{i}".encode()) for i in range(20)])
        listener = Recording()
        listener.hold = asyncio.Event()
        subject = await join(log, settings, listener)
        try:
            await asyncio.wait_for(listener.assigned.wait(), timeout=60)
            _, before = await _group_members(settings)
            # Held for longer than the session timeout; nothing of it may be read meanwhile.
            loop = asyncio.get_running_loop()
            held_until = loop.time() + session_s * 1.5
            while loop.time() < held_until:
                assert await subject.fetch(100, 0.5) == []
            state, after = await _group_members(settings)
            assert (state, after) == ("Stable", before)
            listener.hold.set()
            got: list[bytes] = []

            async def all_read() -> bool:
                got.extend(r.value for r in await subject.fetch(100, 0.5))
                return len(got) >= 20

            await wait_for(all_read, timeout_s=60)
            assert len(got) == 20
            assert subject.broken is None
        finally:
            await subject.stop()


async def test_a_stop_cut_short_still_closes_the_producers(settings: Settings) -> None:
    async with started_log(settings) as log:
        subject = await join(log, settings)
        await wait_for(holding(log), timeout_s=60)
        stopping = asyncio.create_task(subject.stop())
        await asyncio.sleep(0)  # inside aiokafka's stop, leaving the group
        stopping.cancel()  # a shutdown deadline cancels the owner mid-stop
        with contextlib.suppress(asyncio.CancelledError):
            await stopping
        assert log.holdings().producers == ()
        # aiokafka's own close was not cut short: it finishes, and the books empty.
        await wait_for(holding(log, producers=0, consumers=0), timeout_s=30)


async def test_closing_the_log_closes_what_an_owner_left_open(settings: Settings) -> None:
    log = KafkaLog(settings)
    await log.start()
    try:
        await join(log, settings)  # never stopped by its owner
        await wait_for(holding(log), timeout_s=60)
    finally:
        await log.close()
    assert log.holdings().consumers == 0
    assert log.holdings().producers == ()


async def test_a_commit_never_uses_a_producer_being_closed(settings: Settings) -> None:
    # A batch fetched before a revocation may commit while the revoked partition's
    # producer closes: it must fail at once (the owner rebuilds the consumer), not start
    # a transaction on a producer whose sender is going away and wait for it forever.
    async with started_log(settings) as log:
        subject = await join(log, settings)
        await wait_for(holding(log), timeout_s=60)
        tp = sorted(subject.assignment())[0]
        closing = asyncio.create_task(subject.release({tp}))
        await asyncio.sleep(0)  # the close has begun
        with pytest.raises(LogUnavailable, match="not owned here"):
            await asyncio.wait_for(
                subject.commit({tp: [Record(settings.topic_outbound, b"x", b"k")]}, {tp: 1}),
                timeout=10,
            )
        await closing
        assert tp not in log.holdings().producers
        await subject.stop()


async def test_a_commit_never_uses_a_producer_still_starting(settings: Settings) -> None:
    # The same batch may commit while the partition comes back to this member and its
    # new producer is still fencing the old one: it must not begin a transaction there.
    async with started_log(settings) as log:
        subject = await join(log, settings)
        await wait_for(holding(log), timeout_s=60)
        tp = sorted(subject.assignment())[0]
        await subject.release({tp})
        starting = asyncio.create_task(subject.acquire({tp}))
        await asyncio.sleep(0)  # the start has begun
        assert tp in log.holdings().starting
        with pytest.raises(LogUnavailable, match="not owned here"):
            await asyncio.wait_for(
                subject.commit({tp: [Record(settings.topic_outbound, b"x", b"k")]}, {tp: 1}),
                timeout=10,
            )
        await starting
        await subject.commit({tp: [Record(settings.topic_outbound, b"x", b"k")]}, {tp: 1})
        await subject.stop()

"""Transactions left hanging on a state partition: found at assignment, aborted, or
reported (README, known limitations: a broker that completes a transaction without its
markers)."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as AioTopicPartition

from gateway.errors import LogUnavailable
from gateway.lifespan import all_topics
from gateway.log.base import TopicPartition
from gateway.log.kafka import KafkaLog
from gateway.log.kafka.consumer import hanging
from gateway.settings import Settings
from tests.conftest import SettingsFactory
from tests.helpers import wait_for

from .test_rebalance import Recording, join, started_log

S0, S1 = ("state", 0), ("state", 1)


@pytest.mark.parametrize(
    ("committed_end", "written_end", "expected"),
    [
        ({S0: 5, S1: 7}, {S0: 5, S1: 7}, []),  # nothing open
        ({S0: 2, S1: 7}, {S0: 11, S1: 7}, [S0]),  # records past the last stable offset
        ({S0: 0}, {S0: 0}, []),  # empty
        ({}, {S0: 4}, []),  # no stable offset known: not judged
    ],
)
def test_a_partition_hangs_when_its_stable_end_is_behind_its_written_end(
    committed_end: dict[TopicPartition, int],
    written_end: dict[TopicPartition, int],
    expected: list[TopicPartition],
) -> None:
    assert hanging(committed_end, written_end) == expected


@pytest.fixture
async def settings(make_settings: SettingsFactory, kafka_bootstrap: str) -> Settings:
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap, kafka_partitions=3)
    log = KafkaLog(settings, topics=all_topics(settings))  # creates them, 3 partitions each
    await log.start()
    await log.close()
    return settings


@pytest.mark.kafka
async def test_an_open_transaction_on_a_state_partition_stops_the_assignment_until_it_ends(
    settings: Settings,
) -> None:
    # A producer that is not the partition's holds a transaction open on state partition
    # 0: the member's own abort cannot end it, so the assignment fails (the owner then
    # rebuilds the consumer) instead of reading state and offsets that are not settled.
    stranger = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        transactional_id=f"stranger-{uuid.uuid4().hex[:8]}",
        enable_idempotence=True,
    )
    await stranger.start()
    try:
        await stranger.begin_transaction()
        await (await stranger.send(settings.topic_state, b"v", key=b"k", partition=0))
        async with started_log(settings) as log:
            subject = await join(log, settings)
            await wait_for(lambda: subject.broken is not None, timeout_s=60)
            with pytest.raises(LogUnavailable, match="still hang after an abort"):
                await subject.fetch(10, 0.1)
            await subject.stop()
            # A consumer of another topic (a DLQ redrive) does not judge the state
            # partitions: it takes its partitions while the transaction is still open.
            listener = Recording()
            redrive = log.consumer(
                f"{settings.kafka_consumer_group}-redrive", [settings.topic_dlq], listener
            )
            await redrive.start()
            await wait_for(listener.assigned.is_set, timeout_s=60)  # after the check
            assert redrive.broken is None
            await redrive.stop()
            await stranger.abort_transaction()
            # Once it ended, the next member takes every partition.
            member = await join(log, settings)
            await wait_for(lambda: len(member.assignment()) == 3, timeout_s=60)
            assert member.broken is None
            await member.stop()
            # The first member's aborting transaction wrote to every partition it may
            # write, and none of it is visible to a read_committed reader.
            assert [r async for r in log.read(settings.topic_outbound)] == []
            written = await _written_ends(settings, settings.topic_outbound)
            assert all(end >= 2 for end in written)  # a record and its abort marker
    finally:
        await stranger.stop()


async def _written_ends(settings: Settings, topic: str) -> list[int]:
    """Each partition's end as a read_uncommitted reader sees it (aborted records too)."""
    reader = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        isolation_level="read_uncommitted",
        enable_auto_commit=False,
    )
    await reader.start()
    try:
        partitions = [AioTopicPartition(topic, p) for p in range(settings.kafka_partitions)]
        reader.assign(partitions)
        return list((await reader.end_offsets(partitions)).values())
    finally:
        await reader.stop()

"""The processor's input positions live in its state changelog (gateway/log/kafka/positions.py):
the decisions as tables, and on a real broker that a new owner resumes from the changelog
even when the group's offsets say otherwise, that it finds a position far from the end,
and that the group's offsets catch up for lag tools."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as AioTopicPartition

from gateway.lifespan import all_topics
from gateway.log.base import POSITION_KEY, Record
from gateway.log.kafka import KafkaConsumer, KafkaLog
from gateway.log.kafka.positions import (
    decode_position,
    encode_position,
    last_position,
    scan_start,
    searched_all,
    start_position,
)
from gateway.settings import Settings
from tests.conftest import SettingsFactory
from tests.helpers import wait_for
from tests.log.test_contract import fetch_until

from .test_rebalance import started_log

P = POSITION_KEY


@pytest.mark.parametrize(
    ("value", "expected"),
    [(b"0", 0), (b"1234", 1234), (b"", None), (b"-1", None), (b"12a", None), (b"{}", None)],
)
def test_a_position_value_is_a_decimal_offset(value: bytes, expected: int | None) -> None:
    assert decode_position(value) == expected
    if expected is not None:
        assert encode_position(expected) == value


def test_a_negative_position_is_refused() -> None:
    with pytest.raises(ValueError, match="never negative"):
        encode_position(-1)


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([], None),
        ([(b"outbound:1", b"{}")], None),  # entities only
        ([(P, b"5"), (b"outbound:1", b"{}")], 5),  # entities after it
        ([(P, b"5"), (P, b"9")], 9),  # the last one counts
        ([(P, b"5"), (P, b"junk")], 5),  # one that is not a position is passed over
        ([(None, b"7")], None),  # keyless
    ],
)
def test_the_last_position_record_wins(
    records: list[tuple[bytes | None, bytes]], expected: int | None
) -> None:
    assert last_position(records) == expected


@pytest.mark.parametrize(
    ("changelog", "group", "expected"),
    [
        (None, None, None),  # nothing committed: the reset policy decides
        (None, 40, 40),  # first start after an upgrade: the group's offset
        (50, None, 50),  # the group's offsets were never shared (or deleted)
        (50, 48, 50),  # the usual: the group's offsets a moment behind
        (50, 60, 60),  # moved forward by an operator
    ],
)
def test_reading_resumes_at_the_larger_position_known(
    changelog: int | None, group: int | None, expected: int | None
) -> None:
    assert start_position(changelog, group) == expected


@pytest.mark.parametrize(
    ("begin", "end", "window", "start", "all_"),
    [
        (0, 1000, 64, 936, False),
        (0, 50, 64, 0, True),
        (900, 1000, 64, 936, False),
        (950, 1000, 64, 950, True),
        (0, 64, 64, 0, True),
    ],
)
def test_a_backward_search_reads_a_window_before_the_end(
    begin: int, end: int, window: int, start: int, all_: bool
) -> None:
    assert scan_start(begin, end, window) == start
    assert searched_all(begin, end, window) is all_


@pytest.fixture
async def settings(make_settings: SettingsFactory, kafka_bootstrap: str) -> Settings:
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap, kafka_partitions=1)
    log = KafkaLog(settings, topics=all_topics(settings))
    await log.start()
    await log.close()
    return settings


async def _member(log: KafkaLog, settings: Settings) -> KafkaConsumer:
    consumer = log.consumer(settings.kafka_consumer_group, [settings.topic_raw])
    await consumer.start()
    return consumer


async def _group_offset(settings: Settings, move_to: int | None = None) -> int | None:
    """The group's offset of raw partition 0, first moved to `move_to` by hand if given
    (a plain commit from outside the group, as tools do while it has no members)."""
    outsider = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.kafka_consumer_group,
        enable_auto_commit=False,
    )
    await outsider.start()
    try:
        tp = AioTopicPartition(settings.topic_raw, 0)
        if move_to is not None:
            outsider.assign([tp])
            await outsider.commit({tp: move_to})
        offset: int | None = await outsider.committed(tp)
        return offset
    finally:
        await outsider.stop()


@pytest.mark.kafka
async def test_a_new_owner_resumes_from_the_changelog_not_from_a_lagging_group_offset(
    settings: Settings,
) -> None:
    raw, state, sink = settings.topic_raw, settings.topic_state, settings.topic_outbound
    async with started_log(settings) as log:
        await log.append([Record(raw, f"in-{i}".encode(), b"k", partition=0) for i in range(3)])
        first = await _member(log, settings)
        try:
            records = await fetch_until(first, 3)
            assert [r.value for r in records] == [b"in-0", b"in-1", b"in-2"]
            tp = records[0].topic_partition
            await first.commit({tp: [Record(sink, b"out", b"k")]}, {tp: 3})
            # A commit of outputs alone (no position) puts entity records after it: the
            # position is found further back than the first window.
            changelog = [
                Record(state, b"{}", f"outbound:{i}".encode(), partition=0) for i in range(100)
            ]
            await first.commit({tp: changelog}, {})
            # The group's offsets follow, outside the transactions.
            await wait_for(lambda: _group_offset_is(settings, 3), timeout_s=30)
        finally:
            await first.stop()

        kept = [r async for r in log.read(state, partitions=[0]) if r.key == POSITION_KEY]
        assert [r.value for r in kept] == [b"3"]

        assert await _group_offset(settings, move_to=0) == 0  # they say: start over
        await log.append([Record(raw, b"in-3", b"k", partition=0)])
        second = await _member(log, settings)
        try:
            [record] = await fetch_until(second, 1)
            assert (record.value, record.offset) == (b"in-3", 3)  # not in-0 again
            await second.rewind()  # a failed batch rewinds to the changelog's position
            [again] = await fetch_until(second, 1)
            assert (again.value, again.offset) == (b"in-3", 3)
            assert await second.lag() == {(raw, 0): 1}
        finally:
            await second.stop()


@pytest.mark.kafka
async def test_without_a_position_in_the_changelog_the_group_offset_counts(
    settings: Settings,
) -> None:
    # The first start after an upgrade: the previous version kept positions only in the
    # group's offsets.
    raw = settings.topic_raw
    async with started_log(settings) as log:
        await log.append([Record(raw, f"in-{i}".encode(), b"k", partition=0) for i in range(3)])
        assert await _group_offset(settings, move_to=2) == 2
        member = await _member(log, settings)
        try:
            [record] = await fetch_until(member, 1)
            assert (record.value, record.offset) == (b"in-2", 2)
        finally:
            await member.stop()


async def _group_offset_is(settings: Settings, expected: int) -> bool:
    return await _group_offset(settings) == expected

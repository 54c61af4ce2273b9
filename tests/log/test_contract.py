"""The log contract, run against both implementations: the embedded SQLite log and a
real Kafka broker. The pipeline relies on exactly these properties and no others."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from gateway.lifespan import build_log
from gateway.log.base import Log, LogConsumer, LogRecord, Record
from gateway.log.kafka import KafkaLog
from gateway.log.spool import SpoolingLog
from gateway.log.sqlite import SqliteLog
from tests.conftest import SettingsFactory


@dataclass
class Subject:
    log: Log
    source: str
    sink: str
    group: str


@pytest.fixture(
    params=["embedded", pytest.param("kafka", marks=pytest.mark.kafka)],
)
async def subject(
    request: pytest.FixtureRequest, make_settings: SettingsFactory
) -> AsyncIterator[Subject]:
    if request.param == "kafka":
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        settings = make_settings(kafka_bootstrap_servers=bootstrap, kafka_partitions=1)
    else:
        settings = make_settings()
    log = build_log(settings)
    await log.start()
    try:
        yield Subject(
            log, settings.topic_raw, settings.topic_outbound, settings.kafka_consumer_group
        )
    finally:
        await log.close()


async def read_all(log: Log, topic: str) -> list[LogRecord]:
    return [record async for record in log.read(topic)]


async def fetch_until(
    consumer: LogConsumer, count: int, deadline_s: float = 30.0
) -> list[LogRecord]:
    """Fetch until `count` records arrived or the deadline passed."""
    got: list[LogRecord] = []
    end = time.monotonic() + deadline_s
    while len(got) < count and time.monotonic() < end:
        got.extend(await consumer.fetch(count - len(got), 1.0))
    return got


async def test_append_returns_positions_in_order_and_read_returns_records_intact(
    subject: Subject,
) -> None:
    records = [
        Record(subject.source, f"v{i}".encode(), b"order-1", (("h", bytes([i, 255])),))
        for i in range(5)
    ]
    positions = await subject.log.append(records)

    assert [p.offset for p in positions] == sorted(p.offset for p in positions)
    assert len({(p.partition, p.offset) for p in positions}) == 5
    back = await read_all(subject.log, subject.source)
    assert [(r.key, r.value, r.header("h")) for r in back] == [
        (b"order-1", f"v{i}".encode(), bytes([i, 255])) for i in range(5)
    ]


async def test_records_of_one_key_keep_their_order(subject: Subject) -> None:
    keys = [b"a", b"b", b"c"]
    await subject.log.append(
        [Record(subject.source, f"{k.decode()}{i}".encode(), k) for i in range(20) for k in keys]
    )

    back = await read_all(subject.log, subject.source)
    for key in keys:
        values = [r.value.decode() for r in back if r.key == key]
        assert values == [f"{key.decode()}{i}" for i in range(20)]


async def test_commit_moves_position_and_appends_outputs_together(subject: Subject) -> None:
    await subject.log.append([Record(subject.source, f"in{i}".encode(), b"k") for i in range(4)])
    consumer = subject.log.consumer(subject.group, [subject.source])
    await consumer.start()
    try:
        batch = await fetch_until(consumer, 4)
        assert [r.value for r in batch] == [b"in0", b"in1", b"in2", b"in3"]
        first_two = batch[:2]
        tp = first_two[-1].topic_partition
        await consumer.commit(
            {tp: [Record(subject.sink, b"out" + r.value, b"k") for r in first_two]},
            {tp: first_two[-1].offset + 1},
        )
    finally:
        await consumer.stop()

    # A new member of the group resumes after the committed position, not after the fetch.
    again = subject.log.consumer(subject.group, [subject.source])
    await again.start()
    try:
        rest = await fetch_until(again, 2)
        assert [r.value for r in rest] == [b"in2", b"in3"]
    finally:
        await again.stop()
    assert [r.value for r in await read_all(subject.log, subject.sink)] == [b"outin0", b"outin1"]


async def test_rewind_fetches_uncommitted_records_again(subject: Subject) -> None:
    await subject.log.append(
        [Record(subject.source, b"x", b"k"), Record(subject.source, b"y", b"k")]
    )
    consumer = subject.log.consumer(subject.group, [subject.source])
    await consumer.start()
    try:
        assert [r.value for r in await fetch_until(consumer, 2)] == [b"x", b"y"]
        await consumer.rewind()
        assert [r.value for r in await fetch_until(consumer, 2)] == [b"x", b"y"]
        lag = await consumer.lag()
        assert sum(lag.values()) == 2
    finally:
        await consumer.stop()


async def test_fetch_returns_empty_after_its_timeout_when_nothing_is_new(subject: Subject) -> None:
    consumer = subject.log.consumer(subject.group, [subject.source])
    await consumer.start()
    try:
        started = time.monotonic()
        assert await consumer.fetch(10, 0.3) == []
        assert time.monotonic() - started < 10
    finally:
        await consumer.stop()


async def test_read_since_skips_older_records(subject: Subject) -> None:
    now_ms = int(time.time() * 1000)
    await subject.log.append(
        [
            Record(subject.source, b"old", b"k", timestamp_ms=now_ms - 60_000),
            Record(subject.source, b"new", b"k", timestamp_ms=now_ms),
        ]
    )
    back = [r async for r in subject.log.read(subject.source, since_ms=now_ms - 1000)]
    assert [r.value for r in back] == [b"new"]


async def test_embedded_compacted_topic_keeps_only_the_newest_per_key(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings()
    log = build_log(settings)
    assert isinstance(log, SqliteLog)
    await log.start()
    try:
        topic = settings.topic_state
        await log.append([Record(topic, b"1", b"a"), Record(topic, b"1", b"b")])
        await log.append([Record(topic, b"2", b"a")])
        back = await read_all(log, topic)
        assert sorted((r.key, r.value) for r in back) == [(b"a", b"2"), (b"b", b"1")]
    finally:
        await log.close()


@pytest.mark.kafka
async def test_kafka_mode_builds_a_spooling_log(
    make_settings: SettingsFactory, kafka_bootstrap: str
) -> None:
    log = build_log(make_settings(kafka_bootstrap_servers=kafka_bootstrap))
    assert isinstance(log, SpoolingLog)
    assert isinstance(log.kafka, KafkaLog)

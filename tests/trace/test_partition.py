"""The trace looks for a key on the partition the broker put it on (Kafka's default
partitioner; gateway/log/kafka/partitioner.py, tested against aiokafka's own in
tests/log/test_partitioner.py)."""

from __future__ import annotations

import pytest

from gateway.log.base import Record
from gateway.log.kafka import KafkaLog
from gateway.log.kafka.partitioner import partition_for
from gateway.trace.source import KafkaSource
from tests.conftest import SettingsFactory

pytestmark = pytest.mark.kafka


async def test_the_broker_puts_keys_where_the_trace_looks(
    make_settings: SettingsFactory, kafka_bootstrap: str
) -> None:
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap, kafka_partitions=7)
    log = KafkaLog(settings, topics=[settings.topic_raw])
    await log.start()
    try:
        keys = [f"OCO{n:013d}GB".encode() for n in range(60)]
        positions = await log.append([Record(settings.topic_raw, b"{}", key) for key in keys])
    finally:
        await log.close()
    assert {p.partition for p in positions} == set(range(7))  # the keys spread
    source = KafkaSource(KafkaLog(settings))
    await source.start()
    try:
        for key, position in zip(keys, positions, strict=True):
            assert position.partition == partition_for(key, 7)
            assert await source.partition_of(settings.topic_raw, key) == position.partition
        (found,) = await source.keyed(settings.topic_raw, keys[5], None)
        assert found.offset == positions[5].offset
        assert await source.partition_of("no.such.topic", keys[0]) is None
        assert await source.keyed("no.such.topic", keys[0], None) == []
    finally:
        await source.close()

"""The trace finds a key's partition the way Kafka's default partitioner chose it."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from gateway.log.base import Record
from gateway.log.kafka import KafkaLog
from gateway.trace.partition import murmur2, partition_for
from tests.conftest import SettingsFactory


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # Kafka's own test vectors (UtilsTest.testMurmur2), signed as Java prints them.
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_matches_kafkas_vectors(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected & 0xFFFFFFFF


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=200))
def test_partition_matches_aiokafkas_default_partitioner(key: bytes, partitions: int) -> None:
    every = list(range(partitions))
    assert murmur2(key) == aiokafka_murmur2(key) & 0xFFFFFFFF
    assert partition_for(key, partitions) == DefaultPartitioner()(key, every, every)


def test_a_topic_has_partitions() -> None:
    with pytest.raises(ValueError, match="at least one"):
        partition_for(b"x", 0)


@pytest.mark.kafka
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
    for key, position in zip(keys, positions, strict=True):
        assert position.partition == partition_for(key, 7)

"""Our murmur2 partitioning agrees with aiokafka's (the Java client's rule)."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner as AiokafkaPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from gateway.log.kafka.partitioner import DefaultPartitioner, murmur2, partition_for


@given(st.binary(max_size=64))
def test_murmur2_is_kafkas(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


@given(st.binary(min_size=1, max_size=40), st.integers(min_value=1, max_value=64))
def test_a_key_goes_where_kafkas_default_partitioner_puts_it(key: bytes, count: int) -> None:
    partitions = list(range(count))
    expected = AiokafkaPartitioner()(key, partitions, partitions)
    assert partition_for(key, count) == expected
    assert DefaultPartitioner()(key, partitions, partitions) == expected


def test_known_values_of_the_java_client() -> None:
    # From Kafka's own test suite (UtilsTest.testMurmur2), as unsigned 32-bit values.
    assert murmur2(b"21") & 0xFFFFFFFF == (-973932308) & 0xFFFFFFFF
    assert murmur2(b"foobar") & 0xFFFFFFFF == (-790332482) & 0xFFFFFFFF

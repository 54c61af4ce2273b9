"""A Kafka commit hands its outputs to the producer as one batch per topic-partition; a
read_committed reader finds every record where Kafka's own partitioner puts its key, in
the order given, including a record larger than a batch."""

from __future__ import annotations

import pytest

from gateway.log.base import LogRecord, Record
from gateway.log.kafka import KafkaLog
from gateway.log.kafka.partitioner import partition_for
from tests.conftest import SettingsFactory
from tests.helpers import wait_for
from tests.log.test_contract import fetch_until

pytestmark = pytest.mark.kafka

PARTITIONS = 6
BATCH_BYTES = 16 * 1024


async def test_a_commit_publishes_every_output_in_order_on_its_keys_partition(
    make_settings: SettingsFactory, kafka_bootstrap: str
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_partitions=PARTITIONS,
        kafka_max_batch_bytes=BATCH_BYTES,  # several batches per partition
    )
    sink = settings.topic_outbound
    log = KafkaLog(settings, topics=[settings.topic_raw, sink])
    await log.start()
    outputs = [Record(sink, f"{i}".encode() * 50, f"key-{i % 13}".encode()) for i in range(600)]
    outputs.insert(300, Record(sink, b"x" * (3 * BATCH_BYTES), b"key-big"))  # over a batch
    outputs.append(Record(sink, b"placed", b"key-0", partition=5))  # its partition, given
    try:
        await log.append([Record(settings.topic_raw, b"in", b"key-0")])
        consumer = log.consumer(settings.kafka_consumer_group, [settings.topic_raw])
        await consumer.start()
        try:
            [record] = await fetch_until(consumer, 1)
            await consumer.commit(
                {record.topic_partition: outputs}, {record.topic_partition: record.offset + 1}
            )
        finally:
            await consumer.stop()
        found: list[LogRecord] = []

        async def all_visible() -> bool:  # once the transaction's markers are written
            found[:] = [r async for r in log.read(sink)]
            return len(found) >= len(outputs)

        await wait_for(all_visible, timeout_s=30)
    finally:
        await log.close()

    def where(r: Record | LogRecord) -> int:
        assert r.key is not None
        return partition_for(r.key, PARTITIONS) if r.partition is None else r.partition

    assert len(found) == len(outputs)
    assert all(r.partition == where(r) for r in found if r.value != b"placed")
    assert [r.partition for r in found if r.value == b"placed"] == [5]
    for p in range(PARTITIONS):  # each partition holds its records in the order given
        given = [r.value for r in outputs if where(r) == p]
        assert [r.value for r in found if r.partition == p] == given

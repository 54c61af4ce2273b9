"""Appends on Kafka, many at once: each append gets its own records' positions, every
record lands where its key says, and the records of one key keep the order they were
appended in."""

from __future__ import annotations

import asyncio

import pytest

from gateway.log.base import Position, Record
from gateway.log.kafka import KafkaLog
from gateway.log.kafka.partitioner import partition_for
from tests.conftest import SettingsFactory

pytestmark = pytest.mark.kafka

PARTITIONS = 6


async def test_concurrent_appends_get_their_own_positions_in_key_order(
    make_settings: SettingsFactory, kafka_bootstrap: str
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_partitions=PARTITIONS,
        kafka_max_batch_bytes=16384,  # batches fill up: more than one per partition at once
    )
    topic = settings.topic_raw
    log = KafkaLog(settings, topics=[topic])
    await log.start()
    try:

        async def sender(n: int) -> list[tuple[Record, Position]]:
            done = []
            for i in range(20):
                record = Record(topic, f"{n}-{i}".encode() * 100, f"key-{n % 7}".encode())
                [position] = await log.append([record])
                done.append((record, position))
            return done

        results = [
            pair for batch in await asyncio.gather(*map(sender, range(50))) for pair in batch
        ]
        back = {(r.partition, r.offset): r for r in [r async for r in log.read(topic)]}
    finally:
        await log.close()

    assert len(back) == len(results) == 1000
    for record, position in results:
        found = back[(position.partition, position.offset)]  # the position it was given...
        assert found.value == record.value  # ...holds it
        assert record.key is not None
        assert position.partition == partition_for(record.key, PARTITIONS)
    for n in range(7):  # each key's records in the order each sender appended them
        key = f"key-{n}".encode()
        by_offset = sorted((p.offset, r.value) for r, p in results if r.key == key)
        for sender_n in {int(v.split(b"-")[0]) for _, v in by_offset}:
            mine = [v for _, v in by_offset if v.startswith(f"{sender_n}-".encode())]
            assert mine == [f"{sender_n}-{i}".encode() * 100 for i in range(20)]

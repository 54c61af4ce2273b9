"""A Kafka fetch hands over what the broker holds now, not what aiokafka prefetched when
the previous batch was taken (that made every record wait one batch more)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.log.base import LogRecord, Record
from gateway.log.kafka import KafkaLog
from gateway.log.kafka import consumer as kafka_consumer
from tests.conftest import SettingsFactory
from tests.helpers import wait_for

pytestmark = pytest.mark.kafka


async def test_a_fetch_also_takes_records_newer_than_its_prefetch(
    make_settings: SettingsFactory, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A generous top-up wait, so a slow machine only makes the test slower, never wrong.
    monkeypatch.setattr(kafka_consumer, "_TOP_UP_MS", 20_000)
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap, kafka_partitions=1)
    log = KafkaLog(settings)
    await log.start()
    try:
        consumer = log.consumer(settings.kafka_consumer_group, [settings.topic_raw])
        await consumer.start()
        try:

            async def append(value: bytes) -> None:
                await log.append([Record(settings.topic_raw, value, b"order-1")])

            got: list[LogRecord] = []

            async def fetched(count: int) -> bool:
                got.extend(await consumer.fetch(10, 0.2))
                return len(got) >= count

            await append(b"a")
            await wait_for(lambda: fetched(1), timeout_s=60)
            # Taking "a" sent the next fetch: once "b" is in, aiokafka holds it prefetched.
            await append(b"b")
            fetcher: Any = consumer._consumer._fetcher
            await wait_for(lambda: bool(fetcher._records), timeout_s=30)
            await append(b"c")  # on the broker, newer than what the prefetch holds

            batch = await consumer.fetch(10, 5.0)
        finally:
            await consumer.stop()
    finally:
        await log.close()

    assert [r.value for r in got] == [b"a"]
    assert [r.value for r in batch] == [b"b", b"c"]

"""The Kafka lease that elects one reconciling replica: one holder, and a successor when
the holder goes."""

from __future__ import annotations

import asyncio

import pytest

from gateway.log.kafka import KafkaLease, KafkaLog
from tests.conftest import SettingsFactory
from tests.helpers import wait_for

pytestmark = pytest.mark.kafka


async def test_one_replica_holds_the_lease_and_another_takes_over(
    make_settings: SettingsFactory, kafka_bootstrap: str
) -> None:
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap)
    log = KafkaLog(settings)
    await log.start()
    first = KafkaLease(log, settings, "lease-group", settings.topic_lease)
    second = KafkaLease(log, settings, "lease-group", settings.topic_lease)
    try:
        await asyncio.gather(first.start(), second.start())

        async def one_holder() -> bool:
            return [first.held(), second.held()].count(True) == 1

        await wait_for(one_holder, timeout_s=30)
        holder, other = (first, second) if first.held() else (second, first)
        await holder.stop()

        async def taken_over() -> bool:
            return other.held()

        await wait_for(taken_over, timeout_s=30)
        assert not holder.held()
    finally:
        await first.stop()
        await second.stop()
        await log.close()

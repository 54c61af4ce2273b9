"""The spool's disk fills while Kafka is down, and later the spool cannot delete what it
forwarded. The disk is "full" by SQLite's page limit and writes are refused by
`PRAGMA query_only` (see tests/faults/test_disk_full.py for why the page limit).

These tests kill a broker of their own (SIGKILL, as a crash) and restart it.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from gateway.log.spool import SpoolingLog
from tests.conftest import SettingsFactory
from tests.faults.test_disk_full import JSON, callback, metric, ready_is
from tests.helpers import TOKEN_PATH, KafkaTopicReader, running_app, wait_for
from tests.load import delivery_of
from tools.kafka_broker import Broker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def test_the_spool_on_a_full_disk_refuses_and_a_failed_trim_sends_nothing_twice(
    make_settings: SettingsFactory, own_broker: Broker
) -> None:
    """Kafka is down and the spool's disk fills: 503 and not ready, until there is room.
    Then Kafka is back but the spool cannot delete what it forwarded (writes refused):
    the drainer retries the delete, never the send."""
    settings = make_settings(
        kafka_bootstrap_servers=own_broker.bootstrap, kafka_append_timeout_s=0.5
    )
    async with running_app(settings) as (client, gateway):
        assert isinstance(gateway.log, SpoolingLog)
        spool = gateway.log.spool

        async def post(body: bytes) -> httpx.Response:
            return await client.post(f"{TOKEN_PATH}/outbound", content=body, headers=JSON)

        own_broker.kill()
        accepted = []
        for n in range(5):
            body = callback(f"OCO{n:013d}GB", n)
            assert (await post(body)).status_code == 200  # spooled
            accepted.append(delivery_of(body))
        assert gateway.log.spooling

        await spool.enforce_retention()
        await spool.set_pragma("max_page_count", 1)
        full = await post(callback("OCO0000000000100GB", 100))
        assert full.status_code == 503
        assert full.json()["error"] == "log_unavailable"
        await wait_for(lambda: ready_is(client, False))
        assert metric(gateway, "gateway_log_writable", "spool") == 0
        await spool.set_pragma("max_page_count", None)
        await wait_for(lambda: ready_is(client, True))
        for n in range(5, 10):
            body = callback(f"OCO{n:013d}GB", n)
            assert (await post(body)).status_code == 200
            accepted.append(delivery_of(body))

        await spool.set_pragma("query_only", 1)
        errors_then = metric(gateway, "gateway_log_write_errors_total", "spool", reason="read_only")
        await asyncio.to_thread(own_broker.restart)

        async def trims_failed() -> bool:
            count = metric(gateway, "gateway_log_write_errors_total", "spool", reason="read_only")
            return count >= errors_then + 3

        await wait_for(trims_failed, timeout_s=90)
        await spool.set_pragma("query_only", None)
        assert await gateway.log.wait_drained(60)

        async with KafkaTopicReader(own_broker.bootstrap, settings.topic_raw) as raw:
            await raw.read_until(len(accepted))
            records = await raw.drain()
    delivered = Counter(dict(r.headers)["gw-delivery-id"].decode() for r in records)
    assert delivered == Counter(accepted)  # every accepted callback in Kafka, once

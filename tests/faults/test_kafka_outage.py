"""Kafka goes away under load: ingest keeps answering from the spool, loses nothing,
duplicates nothing, and keeps each order's callbacks in order.

These tests kill a broker of their own (SIGKILL, as a crash) and restart it.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from gateway.log.spool import SpoolingLog
from tests.conftest import SettingsFactory
from tests.helpers import TOKEN_PATH, KafkaTopicReader, outbound_callback, running_app, wait_for
from tests.load import Load
from tools.kafka_broker import Broker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
JSON = {"content-type": "application/json"}


async def test_broker_killed_mid_stream_loses_and_duplicates_nothing(
    make_settings: SettingsFactory, own_broker: Broker
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=own_broker.bootstrap, kafka_append_timeout_s=1.0
    )
    load = Load(senders=4, orders_per_sender=4)
    async with running_app(settings) as (client, gateway):
        assert isinstance(gateway.log, SpoolingLog)

        async def post(body: bytes) -> httpx.Response:
            return await client.post(f"{TOKEN_PATH}/outbound", content=body, headers=JSON)

        sending = asyncio.create_task(load.run(post))
        await wait_for(lambda: _at_least(load, 60))
        own_broker.kill()
        before_outage = len(load.acked)
        await wait_for(lambda: _at_least(load, before_outage + 60))
        assert gateway.log.spooling  # answers now come from the spool
        await asyncio.to_thread(own_broker.restart)
        await wait_for(lambda: _at_least(load, before_outage + 120))
        load.stop.set()
        await sending
        assert await gateway.log.wait_drained(60)

        acked = load.acked_ids()
        async with KafkaTopicReader(own_broker.bootstrap, settings.topic_raw) as raw:
            await raw.read_until(len(acked))
            records = await raw.drain()
        delivered = [(r.headers and dict(r.headers)["gw-delivery-id"].decode()) for r in records]
        copies = Counter(delivered)
        assert set(copies) == acked  # none lost, none that was not acknowledged
        assert [d for d, n in copies.items() if n > 1] == []  # exactly once per delivery
        for order in {a.order for a in load.acked}:
            in_topic = [
                dict(r.headers)["gw-delivery-id"].decode()
                for r in records
                if r.key == order.encode()
            ]
            assert in_topic == load.order_of(order)  # per-key order kept

        async with KafkaTopicReader(own_broker.bootstrap, settings.topic_outbound) as typed:
            await typed.read_until(len(acked), timeout_s=90)
            events = await typed.drain()
        ids = Counter(dict(e.headers)["ce_id"] for e in events)
        assert len(ids) == len(acked)
        assert max(ids.values()) == 1  # read_committed sees each event once


async def test_a_full_spool_answers_503_and_recovers(
    make_settings: SettingsFactory, own_broker: Broker
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=own_broker.bootstrap,
        kafka_append_timeout_s=0.5,
        spool_max_bytes=20_000,
    )
    load = Load(senders=2, orders_per_sender=2)
    async with running_app(settings) as (client, gateway):
        assert isinstance(gateway.log, SpoolingLog)
        own_broker.kill()

        async def post(body: bytes) -> httpx.Response:
            return await client.post(f"{TOKEN_PATH}/outbound", content=body, headers=JSON)

        sending = asyncio.create_task(load.run(post))

        async def refused() -> bool:
            return load.answers.get(503, 0) > 0

        await wait_for(refused)
        one_more = outbound_callback("OCO9999999999999GB", "SHIPPED", message_id="one-more")
        full = await client.post(f"{TOKEN_PATH}/outbound", content=one_more, headers=JSON)
        # Neither Kafka nor the spool can take writes: not ready.
        await wait_for(lambda: _ready_is(client, False))
        accepted_while_down = len(load.acked)
        await asyncio.to_thread(own_broker.restart)
        await wait_for(lambda: _at_least(load, accepted_while_down + 20), timeout_s=90)
        load.stop.set()
        await sending
        assert await gateway.log.wait_drained(60)
        await wait_for(lambda: _ready_is(client, True))

    assert full.status_code == 503
    assert full.json()["error"] == "spool_full"
    assert int(full.headers["retry-after"]) >= 1
    assert accepted_while_down > 0  # the spool took what fitted


async def _ready_is(client: httpx.AsyncClient, expected: bool) -> bool:
    return ((await client.get("/readyz")).status_code == 200) is expected


async def _at_least(load: Load, count: int) -> bool:
    return len(load.acked) >= count

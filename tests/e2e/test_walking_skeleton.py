"""One callback path end to end: HTTP -> raw log -> processor -> typed CloudEvents.

Runs on a real Kafka broker (read back by an independent aiokafka consumer) and on the
embedded log. Checks count, keys, CloudEvents headers, payloads and per-key order.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from gateway.process.cloudevents import event_id
from gateway.settings import Settings
from schemas.events import OUTBOUND_STATUS_CHANGED, OutboundOrderStatusChanged
from tests.conftest import SettingsFactory
from tests.helpers import (
    TOKEN_PATH,
    KafkaTopicReader,
    outbound_callback,
    read_topic,
    running_app,
    wait_for,
)

STATUSES = ["CREATED", "ALLOCATED", "PICKING", "PACKED", "SHIPPED"]
ORDERS = [f"OCO00000112250{n:02d}GB" for n in range(4)]


@dataclass(frozen=True)
class Sent:
    order: str
    status: str
    body: bytes


def callbacks() -> list[Sent]:
    """Every order through every status, interleaved across orders."""
    sent = []
    for step, status in enumerate(STATUSES):
        for order in ORDERS:
            body = outbound_callback(
                order,
                status,
                message_id=f"m-{order}-{step}",
                status_time=f"2026-11-27T10:0{step}:00+0800",
            )
            sent.append(Sent(order, status, body))
    return sent


def check_events(
    sent: list[Sent], keys: list[bytes], headers: list[dict[str, bytes]], values: list[bytes]
) -> None:
    assert len(values) == len(sent)
    events = [OutboundOrderStatusChanged.model_validate_json(v) for v in values]
    assert sorted(keys) == sorted(s.order.encode() for s in sent)
    for key, header, event in zip(keys, headers, events, strict=True):
        assert header["ce_specversion"] == b"1.0"
        assert header["ce_type"] == OUTBOUND_STATUS_CHANGED.encode()
        assert header["ce_subject"] == key
        assert header["content-type"] == b"application/json"
        assert header["ce_id"].decode() == event.event_id
        assert event.order_number == key.decode()
        # Deterministic: derived from the delivery (body digest) and the entity.
        expected = event_id(OUTBOUND_STATUS_CHANGED, f"{event.delivery_id}#{key.decode()}#0")
        assert event.event_id == expected
        assert event.shipments[0].skus[0].mf_sku_id == "OC0000000675549"
        assert event.enrichment.status == "not_requested"
        assert not event.status_regressed
    assert len({e.event_id for e in events}) == len(events)
    for order in ORDERS:
        statuses = [e.oc_status for e in events if e.order_number == order]
        assert statuses == STATUSES  # per-key order kept


async def post_all(client: httpx.AsyncClient, sent: list[Sent]) -> None:
    for item in sent:
        response = await client.post(
            f"{TOKEN_PATH}/outbound",
            content=item.body,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["code"] == 0
        assert answer["success"] is True
        assert answer["messageId"] == json.loads(item.body)["messageId"]


async def test_callbacks_become_typed_events_on_the_embedded_log(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings()
    sent = callbacks()
    async with running_app(settings) as (client, gateway):
        await post_all(client, sent)

        async def all_published() -> bool:
            return len(await read_topic(gateway, settings.topic_outbound)) >= len(sent)

        await wait_for(all_published)
        records = await read_topic(gateway, settings.topic_outbound)
        raw = await read_topic(gateway, settings.topic_raw)
    assert len(raw) == len(sent)
    check_events(
        sent,
        [r.key or b"" for r in records],
        [dict(r.headers) for r in records],
        [r.value for r in records],
    )


@contextlib.asynccontextmanager
async def sent_to_kafka_gateway(
    make_settings: SettingsFactory, kafka_bootstrap: str, sent: list[Sent]
) -> AsyncIterator[Settings]:
    """A gateway on Kafka, running, that has accepted every callback of `sent`."""
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap)
    async with running_app(settings) as (client, _):
        await post_all(client, sent)
        yield settings


@pytest.mark.kafka
async def test_callbacks_become_typed_events_on_kafka(
    make_settings: SettingsFactory, kafka_bootstrap: str
) -> None:
    sent = callbacks()
    async with (
        sent_to_kafka_gateway(make_settings, kafka_bootstrap, sent) as settings,
        KafkaTopicReader(kafka_bootstrap, settings.topic_outbound) as reader,
    ):
        await reader.read_until(len(sent))
        records = await reader.drain()
    check_events(
        sent,
        [r.key for r in records],
        [dict(r.headers) for r in records],
        [r.value for r in records],
    )


async def test_a_redelivered_callback_is_published_once(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    body = outbound_callback(ORDERS[0], "SHIPPED", message_id="m-dup")
    async with running_app(settings) as (client, gateway):
        for _ in range(3):
            response = await client.post(
                f"{TOKEN_PATH}/outbound", content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code == 200
        follow = outbound_callback(ORDERS[0], "DELIVERED", message_id="m-next")
        await client.post(
            f"{TOKEN_PATH}/outbound", content=follow, headers={"content-type": "application/json"}
        )

        async def delivered_seen() -> bool:
            events = await read_topic(gateway, settings.topic_outbound)
            return any(b'"delivered"' in r.value for r in events)

        await wait_for(delivered_seen)
        events = await read_topic(gateway, settings.topic_outbound)
        raw = await read_topic(gateway, settings.topic_raw)
    assert len(raw) == 4  # the raw log archives every delivery...
    statuses = [json.loads(r.value)["status"] for r in events]
    assert statuses == ["shipped", "delivered"]  # ...but each change is published once

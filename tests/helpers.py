"""Test helpers: running the app in-process, building callbacks, reading topics back."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from asgi_lifespan import LifespanManager
from starlette.types import ASGIApp

from gateway.app import create_app
from gateway.lifespan import Gateway
from gateway.log.base import LogRecord
from gateway.ops.tracing import Tracing
from gateway.process.processor import Handler
from gateway.settings import Settings
from tests.waiting import wait_for

__all__ = ["wait_for"]  # re-exported: tests import it with the other helpers

TOKEN_PATH = "/webhooks/oc/test-token"


def outbound_callback(
    order_number: str,
    status: str,
    *,
    message_id: str,
    status_time: str = "2026-11-27T10:00:00+0800",
    skus: tuple[str, ...] = ("OC0000000675549",),
    **extra: Any,
) -> bytes:
    """An outbound callback in the inferred OC shape (oc-api README §3)."""
    order = {
        "orderNumber": order_number,
        "referenceNumber": f"REF-{order_number}",
        "serviceRegion": "UK",
        "orderCreationTime": "2026-11-26T16:00:16+0800",
        "status": status,
        "statusTime": status_time,
        "trackingNumberList": [
            {
                "orderNumber": order_number,
                "trackingNumber": f"TRK{order_number[-6:]}",
                "LMCarrierCode": "XDP",
                "LMCarrierName": "XDP",
                "chargeableWeight": "11000.0000",
                "chargeableWeightUnit": "g",
                "feeAmount": 19,
                "feeAmountCurrency": "GBP",
                "SKUList": [{"MFSKUID": sku, "SKUQuantity": 2, "SN": "A01,A02"} for sku in skus],
            }
        ],
        **extra,
    }
    body = {"messageId": message_id, "timestamp": 1795830000000, "data": [order]}
    return json.dumps(body).encode()


def client_from(app: ASGIApp, source: str = "127.0.0.1") -> httpx.AsyncClient:
    """A client that calls `app` in-process, appearing to come from address `source`."""
    transport = httpx.ASGITransport(app=app, client=(source, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway")


@asynccontextmanager
async def running_app(
    settings: Settings,
    wrap_handler: Callable[[Handler], Handler] | None = None,
    tracing: Tracing | None = None,
) -> AsyncIterator[tuple[httpx.AsyncClient, Gateway]]:
    """The app with its lifespan started, and a client that calls it in-process."""
    async with (
        running_asgi(settings, wrap_handler, tracing) as (app, gateway),
        client_from(app) as client,
    ):
        yield client, gateway


@asynccontextmanager
async def running_asgi(
    settings: Settings,
    wrap_handler: Callable[[Handler], Handler] | None = None,
    tracing: Tracing | None = None,
) -> AsyncIterator[tuple[ASGIApp, Gateway]]:
    """The app with its lifespan started (for clients from other addresses)."""
    gateway = Gateway(settings, wrap_handler=wrap_handler, tracing=tracing)
    app = create_app(gateway=gateway)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        yield manager.app, gateway


async def read_topic(gateway: Gateway, topic: str) -> list[LogRecord]:
    return [record async for record in gateway.log.read(topic)]


class KafkaTopicReader:
    """An independent read_committed consumer (not the gateway's code) for assertions."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        self.records: list[Any] = []

    async def __aenter__(self) -> KafkaTopicReader:
        try:
            await self._consumer.start()
        except BaseException:
            await self._consumer.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def read_until(self, count: int, timeout_s: float = 60.0) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        while len(self.records) < count and time.monotonic() < deadline:
            batch = await self._consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                self.records.extend(messages)
        return self.records

    async def read_until_true(
        self, done: Callable[[list[Any]], bool], timeout_s: float = 60.0
    ) -> list[Any]:
        """Read until `done(records)` holds; fail after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not done(self.records):
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.records)} records, condition not met")
            batch = await self._consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                self.records.extend(messages)
        return self.records

    async def drain(self, quiet_s: float = 1.0) -> list[Any]:
        """Everything until no record arrived for `quiet_s` (to prove none extra came)."""
        while True:
            batch = await self._consumer.getmany(timeout_ms=int(quiet_s * 1000))
            if not batch:
                return self.records
            for messages in batch.values():
                self.records.extend(messages)

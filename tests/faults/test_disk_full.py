"""The embedded gateway's disk fills while a batch is being processed, and later has room
again: the case of issue 14, where the last callback answered 200 never became an event
until a restart.

The disk is "full" by SQLite's page limit (`PRAGMA max_page_count` on the log's own
connection, after its free pages went back to the file system): portable, no root and no
mount, and deterministic. Every callback here is larger than one page's cell, so each
write needs a new page and fails, as every write does on a full file system.

What must hold: callbacks that cannot be stored are answered 503; readiness is false
while writes fail, a gauge and a counter say why; the processor's failed commit is
retried until it goes through, with no restart; every callback answered 200 becomes
exactly one event, and the ones answered 503 do once OC sends them again.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence

import httpx

from gateway.lifespan import Gateway
from gateway.log.base import LogRecord, Record
from gateway.log.sqlite import SqliteLog
from gateway.process.handler import Handled, WholeBatch
from gateway.process.processor import Handler
from gateway.process.state import StateView
from tests.conftest import SettingsFactory
from tests.helpers import (
    TOKEN_PATH,
    outbound_callback,
    read_topic,
    running_app,
    wait_for,
)
from tests.load import delivery_of

JSON = {"content-type": "application/json"}
SKUS = tuple(f"OC{n:013d}" for n in range(40))  # a callback of about 3 kB
MARKED = "OCO0000000000500GB"  # the disk fills while this one is being processed


def callback(order: str, n: int) -> bytes:
    return outbound_callback(order, "SHIPPED", message_id=f"m-{order}-{n}", skus=SKUS)


class FillsTheDisk(WholeBatch):
    """The processor's handler; while it handles MARKED, the disk fills up."""

    def __init__(self, inner: Handler, logs: list[SqliteLog], filled: asyncio.Event) -> None:
        self._inner = inner
        self._logs = logs
        self._filled = filled

    async def handle(self, records: Sequence[LogRecord], view: StateView) -> list[Handled]:
        if any(r.key == MARKED.encode() for r in records) and not self._filled.is_set():
            (log,) = self._logs
            await log.enforce_retention()  # free pages go back to the file system
            await log.set_pragma("max_page_count", 1)  # and the file may not grow
            self._filled.set()
        return await self._inner.handle(records, view)

    async def follow_ups(self, view: StateView, now_ms: int) -> dict[int, list[Record]]:
        return await self._inner.follow_ups(view, now_ms)


async def test_a_full_disk_refuses_callbacks_and_everything_resumes_once_there_is_room(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings()
    logs: list[SqliteLog] = []
    filled = asyncio.Event()

    def wrap(inner: Handler) -> Handler:
        return FillsTheDisk(inner, logs, filled)

    async with running_app(settings, wrap_handler=wrap) as (client, gateway):
        assert isinstance(gateway.log, SqliteLog)
        log = gateway.log
        logs.append(log)

        async def post(body: bytes) -> httpx.Response:
            return await client.post(f"{TOKEN_PATH}/outbound", content=body, headers=JSON)

        async def events() -> list[str]:
            out = await read_topic(gateway, settings.topic_outbound)
            return [json.loads(r.value)["deliveryId"] for r in out]

        accepted: list[str] = []
        for n in range(10):
            body = callback(f"OCO{n:013d}GB", n)
            assert (await post(body)).status_code == 200
            accepted.append(delivery_of(body))
        marked = callback(MARKED, 0)
        assert (await post(marked)).status_code == 200
        accepted.append(delivery_of(marked))
        await asyncio.wait_for(filled.wait(), 60)

        # The disk is full: callbacks are refused, readiness drops, the metrics say why.
        refused = [callback(f"OCO{n:013d}GB", n) for n in range(600, 605)]
        for body in refused:
            response = await post(body)
            assert response.status_code == 503
            assert response.json()["error"] == "log_unavailable"
            assert int(response.headers["retry-after"]) >= 1
        await wait_for(lambda: ready_is(client, False))
        assert metric(gateway, "gateway_log_writable") == 0
        errors_then = metric(gateway, "gateway_log_write_errors_total", reason="disk_full")
        assert errors_then >= len(refused)
        # The marked callback's commit keeps failing (retried, as readiness probes are):
        # no event, and the processor lags.
        await wait_for(lambda: _errors_above(gateway, errors_then + 2))
        assert delivery_of(marked) not in await events()
        lag = await log.end_offset(settings.topic_raw) - await log.committed(
            settings.kafka_consumer_group, settings.topic_raw
        )
        assert lag >= 1

        # Room again (the operator freed space): no restart, it all resumes by itself.
        await log.set_pragma("max_page_count", None)
        await wait_for(lambda: ready_is(client, True))
        assert metric(gateway, "gateway_log_writable") == 1

        async def published(wanted: list[str]) -> bool:
            return set(wanted) <= set(await events())

        await wait_for(lambda: published(accepted), timeout_s=90)
        for body in refused:  # OC sends what it was refused again
            response = await post(body)
            assert response.status_code == 200
            accepted.append(delivery_of(body))
        await wait_for(lambda: published(accepted), timeout_s=90)

        raw = await read_topic(gateway, settings.topic_raw)
        out = await read_topic(gateway, settings.topic_outbound)
    stored = Counter((r.header("gw-delivery-id") or b"").decode() for r in raw)
    assert stored == Counter(accepted)  # each accepted callback stored once, nothing else
    published_ids = Counter(json.loads(r.value)["deliveryId"] for r in out)
    assert published_ids == Counter(accepted)  # one event each: none lost, none doubled
    assert len({r.header("ce_id") for r in out}) == len(out)


def metric(gateway: Gateway, name: str, log: str = "embedded", **labels: str) -> float:
    value = gateway.metrics.registry.get_sample_value(name, {"log": log, **labels})
    return float(value or 0.0)


async def _errors_above(gateway: Gateway, count: float, log: str = "embedded") -> bool:
    return metric(gateway, "gateway_log_write_errors_total", log, reason="disk_full") > count


async def ready_is(client: httpx.AsyncClient, expected: bool) -> bool:
    return ((await client.get("/readyz")).status_code == 200) is expected

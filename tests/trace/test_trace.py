"""`gateway trace` on a running gateway, on both logs: what was sent, decided and published."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.commands.trace import run_trace
from gateway.errors import ProcessingError
from gateway.log.base import LogRecord, Record
from gateway.process.handler import Failed, Handled, WholeBatch
from gateway.process.processor import Handler
from gateway.process.state import StateView
from gateway.settings import Settings
from gateway.simulator.data import World
from gateway.simulator.lifecycle import step
from gateway.trace.find import trace
from gateway.trace.source import open_source
from schemas.callbacks import CallbackKind
from tests.conftest import SettingsFactory
from tests.helpers import TOKEN_PATH, outbound_callback, read_topic, running_app, wait_for

ORDER = "OCO0000011225074GB"
BROKEN = "OCO0000000000666GB"
JSON = {"content-type": "application/json"}


class FailsFor(WholeBatch):
    """The processor's handler with a bug for one order."""

    def __init__(self, inner: Handler) -> None:
        self._inner = inner

    async def handle(self, records: Sequence[LogRecord], view: StateView) -> list[Handled]:
        fine = iter(
            await self._inner.handle([r for r in records if r.key != BROKEN.encode()], view)
        )
        return [
            Failed(ProcessingError("cannot map this order"))
            if r.key == BROKEN.encode()
            else next(fine)
            for r in records
        ]

    async def follow_ups(self, view: StateView, now_ms: int) -> dict[int, list[Record]]:
        return await self._inner.follow_ups(view, now_ms)


@pytest.fixture(params=["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
def settings(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> Settings:
    if request.param == "kafka":
        return make_settings(kafka_bootstrap_servers=request.getfixturevalue("kafka_bootstrap"))
    return make_settings()


async def post(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(f"{TOKEN_PATH}/outbound", content=body, headers=JSON)
    assert response.status_code == 200, response.text


def callback(order: str, status: str, minute: int) -> bytes:
    return outbound_callback(
        order,
        status,
        message_id=f"m-{order}-{status}",
        status_time=f"2026-11-27T16:{minute:02d}:00+0800",
        consigneeName="Jane Doe",
        consigneeEmail="jane@example.com",
    )


async def test_one_orders_story(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    shipped = callback(ORDER, "SHIPPED", 5)
    unknown_shape = json.dumps({"data": [{"status": "SHIPPED", "ref": ORDER}]}).encode()
    async with running_app(settings, wrap_handler=FailsFor) as (client, gateway):
        await post(client, callback(ORDER, "CREATED", 0))
        started = datetime.now(UTC)
        for body in (shipped, shipped, unknown_shape, callback(BROKEN, "SHIPPED", 1)):
            await post(client, body)

        async def handled() -> bool:
            events = await read_topic(gateway, settings.topic_outbound)
            dead = await read_topic(gateway, settings.topic_dlq)
            return len(events) >= 2 and len(dead) >= 1

        await wait_for(handled)
        async with open_source(settings) as source:
            story = (await trace(source, settings, ORDER, with_state=True)).to_json()
            later = (
                await trace(source, settings, ORDER, int(started.timestamp() * 1000))
            ).to_json()
            broken = (await trace(source, settings, BROKEN)).to_json()

    assert [d["outcome"] for d in story["deliveries"]] == ["published", "published", "duplicate"]
    assert [d["items"][0]["status"] for d in story["deliveries"]] == [
        "created",
        "shipped",
        "shipped",
    ]
    assert story["deliveries"][2]["items"][0]["reason"] == "same delivery"
    assert story["deliveries"][1]["items"][0]["previous_status"] == "created"
    assert story["deliveries"][0]["verified"] == ["path_token"]
    body = story["deliveries"][0]["body"]["data"][0]
    assert body["consigneeName"] == "[dropped]"
    assert body["orderNumber"] == ORDER
    assert "Jane" not in json.dumps(story)
    assert [e["status"] for e in story["events"]] == ["created", "shipped"]
    for delivery in story["deliveries"][:2]:
        (expected,) = delivery["items"][0]["events"]
        assert expected["found"], expected
    assert len(story["quarantined"]) == 1
    assert story["problems"] == [
        f"delivery {story['quarantined'][0]['delivery_id']} was quarantined "
        f"({story['quarantined'][0]['reason']}): nothing was published from it"
    ]
    (worked_out,) = story["state"]["worked_out"]
    (stored,) = story["state"]["changelog"]
    assert worked_out["status"] == stored["status"] == "shipped"
    assert worked_out["recent_deliveries"] == stored["recent_deliveries"]

    assert [d["items"][0]["status"] for d in later["deliveries"]] == ["shipped", "shipped"]
    assert later["since"] is not None

    assert broken["deliveries"][0]["outcome"] == "dead_lettered"
    assert "cannot map this order" in broken["deliveries"][0]["dead_letters"][0]["reason"]
    assert broken["events"] == []

    capsys.readouterr()  # the gateway's own log lines
    code = await run_trace(settings, ORDER, None, as_json=True, with_state=False)
    printed: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert code == 1  # the quarantined delivery is a problem
    assert printed["entity"] == ORDER
    assert len(printed["deliveries"]) == 3


async def test_a_decided_event_that_never_reached_its_topic(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """The processor did not run (or lost the event): the trace says so, loudly."""
    quiet = settings.model_copy(update={"processor_enabled": False})
    async with running_app(quiet) as (client, _):
        await post(client, callback(ORDER, "SHIPPED", 5))
    capsys.readouterr()  # the gateway's own log lines
    code = await run_trace(quiet, ORDER, None, as_json=False, with_state=False)
    printed = capsys.readouterr().out
    assert code == 1
    assert "PROBLEMS (1)" in printed
    assert "decided published, but no oc.outbound.order.status_changed.v1" in printed
    assert "NOT FOUND" in printed
    assert await run_trace(quiet, "OCO-NEVER-SEEN", None, as_json=True, with_state=False) == 2
    since = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await run_trace(quiet, ORDER, since, as_json=True, with_state=False) == 2


@pytest.mark.parametrize(("kind", "route"), [("return", "returns"), ("inventory", "inventory")])
async def test_returns_and_stock_levels_are_traced_by_their_keys(
    make_settings: SettingsFactory, kind: CallbackKind, route: str
) -> None:
    settings = make_settings()
    world = World(seed=3)
    sent = step(world, kind=kind)
    topic = settings.topic_returns if kind == "return" else settings.topic_inventory
    async with running_app(settings) as (client, gateway):
        response = await client.post(f"{TOKEN_PATH}/{route}", content=sent.body, headers=JSON)
        assert response.status_code == 200, response.text

        async def published() -> bool:
            return bool(await read_topic(gateway, topic))

        await wait_for(published)
        async with open_source(settings) as source:
            story = (await trace(source, settings, sent.entity_key)).to_json()
    (delivery,) = story["deliveries"]
    assert delivery["kind"] == kind
    assert delivery["outcome"] == "published"
    (expected,) = delivery["items"][0]["events"]
    assert expected["topic"] == topic
    assert expected["found"]
    assert story["problems"] == []

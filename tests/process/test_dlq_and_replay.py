"""A record that keeps failing goes to the DLQ whole, with why; after a fix, a re-drive
turns it into its event exactly once; a replay rebuilds history with the same ce_ids."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.commands.common import opened_log
from gateway.commands.dlq import describe, redrive
from gateway.commands.replay import replay
from gateway.errors import ProcessingError
from gateway.log.base import LogRecord, Record
from gateway.process.handler import Failed, Handled, WholeBatch
from gateway.process.processor import Handler
from gateway.process.state import StateView
from gateway.settings import Settings
from tests.conftest import SettingsFactory
from tests.helpers import TOKEN_PATH, outbound_callback, read_topic, running_app, wait_for

BROKEN = "OCO0000000000666GB"
FINE = "OCO0000000000777GB"
JSON = {"content-type": "application/json"}


class FailsFor(WholeBatch):
    """The processor's handler with a bug for one order (what a parser bug looks like)."""

    def __init__(self, inner: Handler, key: str, permanent: bool) -> None:
        self._inner = inner
        self._key = key.encode()
        self._permanent = permanent

    async def handle(self, records: Sequence[LogRecord], view: StateView) -> list[Handled]:
        fine = iter(await self._inner.handle([r for r in records if r.key != self._key], view))
        failure = ProcessingError("cannot map this order") if self._permanent else None
        return [
            Failed(failure or RuntimeError("surprise")) if r.key == self._key else next(fine)
            for r in records
        ]

    async def follow_ups(self, view: StateView, now_ms: int) -> dict[int, list[Record]]:
        return await self._inner.follow_ups(view, now_ms)


def settings_for(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> Settings:
    if request.param == "kafka":
        return make_settings(kafka_bootstrap_servers=request.getfixturevalue("kafka_bootstrap"))
    return make_settings()


@pytest.fixture(params=["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
def settings(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> Settings:
    return settings_for(request, make_settings)


async def records(settings: Settings, topic: str) -> list[LogRecord]:
    async with opened_log(settings) as log:
        return [r async for r in log.read(topic)]


async def typed_events(settings: Settings) -> list[LogRecord]:
    return await records(settings, settings.topic_outbound)


async def dead_letters(settings: Settings) -> list[LogRecord]:
    return await records(settings, settings.topic_dlq)


@pytest.mark.parametrize("permanent", [True, False], ids=["permanent", "after-retries"])
async def test_dead_letter_then_redrive_then_replay(settings: Settings, permanent: bool) -> None:
    started = datetime.now(UTC) - timedelta(minutes=1)
    broken = outbound_callback(BROKEN, "SHIPPED", message_id="b")
    fine = outbound_callback(FINE, "SHIPPED", message_id="f")

    def buggy(inner: Handler) -> Handler:
        return FailsFor(inner, BROKEN, permanent)

    async with running_app(settings, wrap_handler=buggy) as (client, gateway):
        for body in (broken, fine):
            assert (
                await client.post(f"{TOKEN_PATH}/outbound", content=body, headers=JSON)
            ).status_code == 200

        async def dead_lettered() -> bool:
            dead = await read_topic(gateway, settings.topic_dlq)
            return len(dead) == 1 and len(await read_topic(gateway, settings.topic_outbound)) == 1

        await wait_for(dead_lettered)
        dead = await read_topic(gateway, settings.topic_dlq)
        events = await read_topic(gateway, settings.topic_outbound)
    letter: dict[str, Any] = describe(dead[0])
    assert dead[0].value == broken  # the original record, whole
    assert letter["key"] == BROKEN
    assert letter["original"]["topic"] == settings.topic_raw
    if permanent:
        assert letter["reason"] == "processing_error: cannot map this order"
        assert letter["attempts"] == "1"
    else:
        assert letter["reason"] == "unexpected_error: RuntimeError: surprise"
        assert letter["attempts"] == str(settings.processor_max_attempts)
    assert [json.loads(e.value)["orderNumber"] for e in events] == [FINE]  # others unaffected

    # The bug is fixed: the gateway runs without it. A dry run sends nothing.
    async with running_app(settings) as (_, gateway):
        await redrive(settings, dry_run=True, rate=None)
        await redrive(settings, dry_run=False, rate=None)
        await redrive(settings, dry_run=False, rate=None)  # nothing left to send

        async def fixed() -> bool:
            numbers = [json.loads(e.value)["orderNumber"] for e in await typed_events(settings)]
            return BROKEN in numbers

        await wait_for(fixed)
        raw = await read_topic(gateway, settings.topic_raw)
    assert [r.value for r in raw].count(broken) == 2  # original + exactly one re-drive
    assert len(await dead_letters(settings)) == 1
    before = await typed_events(settings)
    assert sorted(json.loads(e.value)["orderNumber"] for e in before) == [BROKEN, FINE]

    async with opened_log(settings) as log:
        read, written, failed = await replay(settings, log, started, None, key=None, enrich=False)
    after = await typed_events(settings)
    assert (read, failed) == (3, 0)  # both callbacks + the re-driven copy
    assert written == 2  # the re-driven copy is the same delivery: deduplicated
    ids_before = {dict(e.headers)["ce_id"] for e in before}
    assert Counter(dict(e.headers)["ce_id"] for e in after) == Counter(
        dict.fromkeys(ids_before, 2)
    )  # replay reproduces exactly the same event ids


async def test_replay_of_one_key_in_a_window(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    async with running_app(settings) as (client, gateway):
        for order in (BROKEN, FINE):
            body = outbound_callback(order, "PACKED", message_id=order)
            await client.post(f"{TOKEN_PATH}/outbound", content=body, headers=JSON)

        async def both() -> bool:
            return len(await read_topic(gateway, settings.topic_outbound)) == 2

        await wait_for(both)
        now = datetime.now(UTC)
        read, written, _ = await replay(
            settings,
            gateway.log,
            now - timedelta(hours=1),
            now,
            key=FINE,
            enrich=False,
            dry_run=True,
        )
        empty = await replay(
            settings, gateway.log, now + timedelta(hours=1), None, key=None, enrich=False
        )
        assert len(await read_topic(gateway, settings.topic_outbound)) == 2  # dry run wrote none
    assert (read, written) == (1, 1)
    assert empty == (0, 0, 0)

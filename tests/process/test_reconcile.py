"""Reconciliation against the simulator over a real socket and a real broker.

The sender drops a share of the simulator's callbacks on purpose. Reconciliation then
publishes exactly the changes no callback reported, once, marked reconciled; the late
callback for an already reconciled change produces no duplicate; a second run finds
nothing. When OC answers 429, reconciliation backs off while enrichment carries on.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.lifespan import Gateway
from gateway.log.base import SoleLease
from gateway.process.reconcile import Reconciler
from gateway.simulator.data import WorldSize
from gateway.simulator.entities import SimCallback
from gateway.simulator.sender import SendConfig, SimulatorSource, send_callbacks
from gateway.simulator.signing import CallbackSigner
from gateway.simulator.state import SimulatorConfig
from schemas.callbacks import CallbackKind
from schemas.events import OUTBOUND_STATUS_CHANGED
from tests.conftest import SettingsFactory
from tests.helpers import KafkaTopicReader
from tests.simulation import (
    QUICK_ENRICHMENT,
    Sim,
    gateway_on_socket,
    oc_client_settings,
    running_simulator,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CLIENT_KEY = "reconcile-client-key"
SECRET_KEY = "reconcile-secret-key"
STATUS = OUTBOUND_STATUS_CHANGED.encode()


class Remembering:
    """The simulator as a callback source that keeps every body it handed out."""

    def __init__(self, inner: SimulatorSource) -> None:
        self._inner = inner
        self.taken: list[SimCallback] = []

    async def take(self, count: int, kind: CallbackKind | None) -> list[SimCallback]:
        batch = await self._inner.take(count, kind)
        self.taken.extend(batch)
        return batch


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    config = SimulatorConfig(
        seed=23,
        client_key=CLIENT_KEY,
        secret_key=SECRET_KEY,
        world_size=WorldSize(skus=30, orders=0, returns=0),
    )
    async with running_simulator(config) as running:
        yield running


def settings_for(make: SettingsFactory, sim: Sim, bootstrap: str) -> Any:
    return make(
        kafka_bootstrap_servers=bootstrap,
        **oc_client_settings(sim, CLIENT_KEY, SECRET_KEY),
        **QUICK_ENRICHMENT,
        reconcile_enabled=False,  # the test runs reconciliation itself, when it wants
        reconcile_lookback_s=86400.0,
    )


def reconciler_of(gateway: Gateway) -> Reconciler:
    """A reconciler over the running gateway's log, OC client and metrics."""
    assert gateway.oc_client is not None
    return Reconciler(
        gateway.settings, gateway.log, gateway.oc_client, gateway.metrics, SoleLease()
    )


async def status_events(bootstrap: str, topic: str, at_least: int) -> list[dict[str, Any]]:
    async with KafkaTopicReader(bootstrap, topic) as reader:
        await reader.read_until_true(
            lambda rs: sum(1 for r in rs if dict(r.headers)["ce_type"] == STATUS) >= at_least
        )
        records = await reader.drain(quiet_s=2.0)
    events = []
    for record in records:
        headers = dict(record.headers)
        if headers["ce_type"] == STATUS:
            event = json.loads(record.value)
            event["_ce_reconciled"] = headers.get("ce_reconciled")
            events.append(event)
    return events


async def test_reconciliation_publishes_exactly_the_missed_changes_once(
    make_settings: SettingsFactory, kafka_bootstrap: str, sim: Sim
) -> None:
    settings = settings_for(make_settings, sim, kafka_bootstrap)
    async with gateway_on_socket(settings) as (url, gateway), httpx.AsyncClient() as client:
        source = Remembering(SimulatorSource(client, sim.url))
        report = await send_callbacks(
            SendConfig(
                target=f"{url}/webhooks/oc/test-token/{{kind}}",
                count=80,
                rate=0,
                concurrency=1,  # callbacks of one order arrive in the order OC sent them
                kind="outbound",
                drop_rate=0.15,
                seed=4,
            ),
            source,
            client,
            CallbackSigner.from_settings(settings),
        )
        assert report.dropped > 0
        delivered = await status_events(kafka_bootstrap, settings.topic_outbound, report.accepted)
        assert len(delivered) == report.accepted

        # What no callback reported: orders whose last change was dropped.
        dropped_ids = {d["messageId"] for d in report.dropped_callbacks}
        last: dict[str, SimCallback] = {}
        for callback in source.taken:
            last[callback.entity_key] = callback
        missed = {key for key, cb in last.items() if cb.message_id in dropped_ids}
        assert missed  # the seed drops some orders' latest change
        oc_status = {
            key: (await sim.control.get(f"/_sim/orders/{key}")).json()["status"] for key in missed
        }

        reconciler = reconciler_of(gateway)
        now = datetime.now(UTC)
        first = await reconciler.run_once(now - timedelta(days=1), now + timedelta(minutes=5))
        assert {f.key for f in first.changes} == missed

        events = await status_events(
            kafka_bootstrap, settings.topic_outbound, report.accepted + len(missed)
        )
        reconciled = [e for e in events if e["reconciled"]]
        assert sorted(e["orderNumber"] for e in reconciled) == sorted(missed)  # once each
        for event in reconciled:
            assert event["_ce_reconciled"] == b"true"
            assert event["ocStatus"] == oc_status[event["orderNumber"]]
        assert all(e["_ce_reconciled"] is None for e in events if not e["reconciled"])

        # The late callbacks arrive after all, and a second run finds nothing new.
        for callback in (last[key] for key in sorted(missed)):
            target = f"{url}/webhooks/oc/test-token/outbound"
            headers = CallbackSigner.from_settings(settings).headers(
                "/webhooks/oc/test-token/outbound",
                callback.body,
                callback.message_id,
                int(now.timestamp()),
            )
            response = await client.post(
                target,
                content=callback.body,
                headers={**headers, "content-type": "application/json"},
            )
            assert response.status_code == 200
        second = await reconciler.run_once(now - timedelta(days=1), now + timedelta(minutes=5))
        assert second.changes == []
        after = await status_events(
            kafka_bootstrap, settings.topic_outbound, report.accepted + len(missed)
        )
    assert len(after) == report.accepted + len(missed)  # no duplicate for a late callback
    metrics = gateway.metrics.registry
    assert metrics.get_sample_value(
        "gateway_reconcile_changes_found_total", {"kind": "outbound"}
    ) == len(missed)


async def test_reconciliation_backs_off_when_oc_is_strained(
    make_settings: SettingsFactory, kafka_bootstrap: str, sim: Sim
) -> None:
    settings = settings_for(make_settings, sim, kafka_bootstrap)
    async with gateway_on_socket(settings) as (url, gateway), httpx.AsyncClient() as client:
        await send_callbacks(
            SendConfig(
                target=f"{url}/webhooks/oc/test-token/{{kind}}", count=5, rate=0, kind="outbound"
            ),
            SimulatorSource(client, sim.url),
            client,
            CallbackSigner.from_settings(settings),
        )
        await sim.faults(rate_limit_rate=1.0, retry_after_s=1)
        reconciler = reconciler_of(gateway)
        factor = await reconciler._one_run(1)
        assert factor == 2  # the next run waits twice as long
        assert await reconciler._one_run(factor) == 4
        await sim.faults(rate_limit_rate=0.0)
        # Enrichment was not starved: new callbacks are enriched as soon as OC answers.
        report = await send_callbacks(
            SendConfig(
                target=f"{url}/webhooks/oc/test-token/{{kind}}", count=5, rate=0, kind="outbound"
            ),
            SimulatorSource(client, sim.url),
            client,
            CallbackSigner.from_settings(settings),
        )
        assert report.accepted == 5
        events = await status_events(kafka_bootstrap, settings.topic_outbound, 10)
    assert {e["enrichment"]["status"] for e in events[-5:]} == {"complete"}


async def test_a_fresh_deployment_records_a_baseline_then_publishes_changes(
    make_settings: SettingsFactory, kafka_bootstrap: str
) -> None:
    config = SimulatorConfig(
        seed=29,
        client_key=CLIENT_KEY,
        secret_key=SECRET_KEY,
        world_size=WorldSize(skus=30, orders=12, returns=0),
    )
    async with running_simulator(config) as world:
        settings = settings_for(make_settings, world, kafka_bootstrap)
        async with gateway_on_socket(settings) as (_, gateway):
            reconciler = reconciler_of(gateway)
            now = datetime.now(UTC)
            window = (now - timedelta(days=4), now + timedelta(minutes=5))
            first = await reconciler.run_once(*window, baseline=True)
            assert first.changes == []
            assert first.baselined >= 12  # every order OC has: recorded, not announced
            missed = {cb.entity_key for cb in await callbacks_never_sent(world, 6)}
            second = await reconciler.run_once(*window, baseline=True)
            assert {f.key for f in second.changes} == missed
            events = await status_events(kafka_bootstrap, settings.topic_outbound, len(missed))
    assert sorted(e["orderNumber"] for e in events) == sorted(missed)
    assert all(e["reconciled"] for e in events)


async def callbacks_never_sent(world: Sim, count: int) -> list[SimCallback]:
    """Advance the simulated world; OC 'sends' these callbacks and all of them get lost."""
    response = await world.control.post(
        "/_sim/callbacks/next", params={"count": count, "kind": "outbound"}
    )
    response.raise_for_status()
    return [
        SimCallback(c["kind"], c["entityKey"], c["messageId"], c["body"].encode())
        for c in response.json()["callbacks"]
    ]

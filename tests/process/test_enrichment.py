"""The processor against a real broker and the OC simulator over a real socket.

Callbacks come from the simulator's world through `gateway simulate send`'s sender, so
what OC's APIs answer is consistent with what the callbacks said. Checked: every
callback becomes exactly one status event, enriched, in per-key order; the OC calls are
batched and cached; and when OC fails, is rate limited or is down, events still arrive
on time, say what is missing, and are completed by follow-up events once OC is back.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.settings import Settings
from gateway.simulator.data import WorldSize
from gateway.simulator.sender import SendConfig, SimulatorSource, send_callbacks
from gateway.simulator.signing import CallbackSigner
from gateway.simulator.state import SimulatorConfig
from schemas.events import OUTBOUND_ENRICHED, OUTBOUND_STATUS_CHANGED
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

CLIENT_KEY = "enrich-client-key"
SECRET_KEY = "enrich-secret-key"


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    config = SimulatorConfig(
        seed=11,
        client_key=CLIENT_KEY,
        secret_key=SECRET_KEY,
        world_size=WorldSize(skus=40, orders=60, returns=10),
    )
    async with running_simulator(config) as running:
        yield running


def enriching_settings(make: SettingsFactory, sim: Sim, bootstrap: str, **extra: Any) -> Settings:
    return make(
        kafka_bootstrap_servers=bootstrap,
        **oc_client_settings(sim, CLIENT_KEY, SECRET_KEY),
        **QUICK_ENRICHMENT,
        oc_breaker_reset_s=1.0,
        reconcile_enabled=False,  # its events would mix with the callbacks' (test_reconcile.py)
        **extra,
    )


async def send(url: str, sim: Sim, settings: Settings, count: int) -> int:
    """Send `count` outbound callbacks taken from the simulator's world; accepted count."""
    async with httpx.AsyncClient(timeout=10) as client:
        report = await send_callbacks(
            SendConfig(
                target=f"{url}/webhooks/oc/test-token/{{kind}}",
                count=count,
                rate=0,
                concurrency=4,
                kind="outbound",
                attempts=3,
            ),
            SimulatorSource(client, sim.url),
            client,
            CallbackSigner.from_settings(settings),
        )
    assert report.accepted == count, report.to_json()
    return report.accepted


async def events_of(bootstrap: str, topic: str, *, status: int, enriched: int = 0) -> list[Any]:
    """Read `topic` until it holds `status` status events and `enriched` follow-ups,
    then until it is quiet (so an extra event would be seen)."""

    def enough(records: list[Any]) -> bool:
        types = Counter(dict(r.headers)["ce_type"].decode() for r in records)
        return types[OUTBOUND_STATUS_CHANGED] >= status and types[OUTBOUND_ENRICHED] >= enriched

    async with KafkaTopicReader(bootstrap, topic) as reader:
        await reader.read_until_true(enough, timeout_s=90)
        return await reader.drain(quiet_s=1.0)


def payloads(records: list[Any], event_type: str) -> list[dict[str, Any]]:
    return [
        json.loads(r.value) for r in records if dict(r.headers)["ce_type"].decode() == event_type
    ]


async def test_each_callback_becomes_one_enriched_event_in_order(
    make_settings: SettingsFactory, kafka_bootstrap: str, sim: Sim
) -> None:
    count = 80
    settings = enriching_settings(make_settings, sim, kafka_bootstrap)
    async with gateway_on_socket(settings) as (url, _):
        await sim.reset()
        await send(url, sim, settings, count)
        records = await events_of(kafka_bootstrap, settings.topic_outbound, status=count)
        stats = await sim.stats()
        async with KafkaTopicReader(kafka_bootstrap, settings.topic_raw) as raw_reader:
            raw = await raw_reader.read_until(count)
        async with KafkaTopicReader(kafka_bootstrap, settings.topic_inventory) as levels:
            inventory = await levels.drain(quiet_s=1.0)

    events = payloads(records, OUTBOUND_STATUS_CHANGED)
    assert len(events) == count
    assert len({e["eventId"] for e in events}) == count
    assert {e["enrichment"]["status"] for e in events} == {"complete"}
    assert all(e["ocOrder"]["orderNumber"] == e["orderNumber"] for e in events)
    with_skus = [e for e in events if any(s["skus"] for s in e["shipments"])]
    assert with_skus
    assert all(e["stockLevels"] for e in with_skus)
    assert inventory  # stock levels are published as inventory-level events too

    # Per key, events follow the order in which ingest accepted the callbacks.
    accepted: dict[bytes, list[str]] = defaultdict(list)
    for record in raw:
        accepted[record.key].append(dict(record.headers)["gw-delivery-id"].decode())
    published: dict[bytes, list[str]] = defaultdict(list)
    for event in events:
        published[event["orderNumber"].encode()].append(event["deliveryId"])
    assert published == accepted

    # Batching and caching: far fewer OC calls than look-ups asked for.
    calls = stats["endpoints"]
    stock_calls = calls.get("stock_snapshot_v2", {}).get("requests", 0)
    order_calls = calls.get("outbound_query_v2", {}).get("requests", 0)
    assert 0 < stock_calls <= count // 4, calls
    assert 0 < order_calls <= count // 4, calls


@pytest.mark.parametrize(
    "faults",
    [
        {"error_rate": 0.3},
        {"rate_limit_rate": 1.0, "retry_after_s": 1},
        {"down": True},
    ],
    ids=["30%-errors", "429", "outage"],
)
async def test_oc_trouble_delays_enrichment_but_never_events(
    make_settings: SettingsFactory, kafka_bootstrap: str, sim: Sim, faults: dict[str, Any]
) -> None:
    count = 30
    settings = enriching_settings(make_settings, sim, kafka_bootstrap)
    async with gateway_on_socket(settings) as (url, _):
        await sim.faults(**faults)
        await send(url, sim, settings, count)
        early = await events_of(kafka_bootstrap, settings.topic_outbound, status=count)
        owed = [e for e in payloads(early, OUTBOUND_STATUS_CHANGED) if e["enrichment"]["followUp"]]
        await sim.faults(error_rate=0.0, rate_limit_rate=0.0, down=False)  # OC recovers
        records = await events_of(
            kafka_bootstrap, settings.topic_outbound, status=count, enriched=len(owed)
        )
        async with KafkaTopicReader(kafka_bootstrap, settings.topic_inventory) as levels:
            inventory = await levels.drain(quiet_s=1.0)

    events = payloads(records, OUTBOUND_STATUS_CHANGED)
    follow_ups = payloads(records, OUTBOUND_ENRICHED)
    assert len(events) == count  # every callback, on time, whatever OC did
    for event in events:
        enrichment = event["enrichment"]
        if enrichment["status"] == "complete":
            assert event["ocOrder"] is not None
        else:
            assert enrichment["status"] in {"partial", "unavailable"}
            assert enrichment["missing"]
            assert enrichment["followUp"] is True
    if faults.get("error_rate") is None:
        assert owed  # with OC refusing every call, every event owes its enrichment
        assert all(e["enrichment"]["status"] == "unavailable" for e in owed)
    assert sorted(f["enrichesEventId"] for f in follow_ups) == sorted(e["eventId"] for e in owed)
    assert {f["enrichment"]["status"] for f in follow_ups} <= {"complete"}
    # Each stock level becomes one inventory event, from the status event or its follow-up.
    level_ids = Counter(dict(r.headers)["ce_id"] for r in inventory)
    assert not level_ids or max(level_ids.values()) == 1
    assert all(f["ocOrder"] is not None for f in follow_ups)

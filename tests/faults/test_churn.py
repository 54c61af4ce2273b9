"""Replicas come and go under load (deploys, node drains, the HPA), so the processor's
consumer group rebalances again and again.

After every rebalance each replica holds one transactional producer per raw partition
the group assigned it, and no more, by its own books and by its metrics; replicas told to
stop with SIGTERM in the middle of it leave nothing unclosed and log no ERROR; a gateway
started on a fresh broker (no offsets topic, no topics yet) logs no ERROR either; and no
callback is lost, doubled or reordered on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from gateway.lifespan import Gateway
from gateway.log.kafka import KafkaLog
from gateway.log.spool import SpoolingLog
from gateway.settings import Settings
from tests.conftest import SettingsFactory, unique_topics
from tests.helpers import TOKEN_PATH, KafkaTopicReader, running_app, running_asgi, wait_for
from tests.load import Load
from tests.processes import GatewayProcess, kafka_env, trouble
from tools.kafka_broker import Broker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
PARTITIONS = 6
JSON = {"content-type": "application/json"}


def kafka_of(gateway: Gateway) -> KafkaLog:
    assert isinstance(gateway.log, SpoolingLog)
    return gateway.log.kafka


def gauge(registry: CollectorRegistry, name: str) -> float:
    value = registry.get_sample_value(name)
    assert value is not None, name
    return value


def settled(gateways: list[Gateway]) -> Callable[[], Awaitable[bool]]:
    """Every raw partition is assigned to exactly one of the gateways, and each holds a
    producer for each partition it was assigned and no other."""

    async def probe() -> bool:
        held = [kafka_of(g).holdings() for g in gateways]
        assigned = [tp for h in held for tp in h.partitions]
        one_each = len(assigned) == PARTITIONS == len(set(assigned))
        return one_each and all(h.producers == h.partitions and not h.starting for h in held)

    return probe


@contextlib.asynccontextmanager
async def replica(settings: Settings) -> AsyncIterator[Gateway]:
    async with running_asgi(settings) as (_, gateway):
        yield gateway


async def test_after_each_rebalance_a_replica_holds_one_producer_per_partition(
    make_settings: SettingsFactory, kafka_bootstrap: str
) -> None:
    first = make_settings(kafka_bootstrap_servers=kafka_bootstrap, kafka_partitions=PARTITIONS)
    shared = {name: getattr(first, name) for name in unique_topics("same")}
    load = Load(senders=3, orders_per_sender=4)
    async with running_app(first) as (client, subject):

        async def post(body: bytes) -> httpx.Response:
            return await client.post(f"{TOKEN_PATH}/outbound", content=body, headers=JSON)

        sending = asyncio.create_task(load.run(post))
        others: list[tuple[contextlib.AbstractAsyncContextManager[Gateway], Gateway]] = []
        rounds = ("join", "join", "leave", "join", "leave", "leave")
        context: contextlib.AbstractAsyncContextManager[Gateway]
        for step in rounds:
            if step == "join":
                context = replica(
                    make_settings(
                        kafka_bootstrap_servers=kafka_bootstrap,
                        kafka_partitions=PARTITIONS,
                        **shared,
                    )
                )
                others.append((context, await context.__aenter__()))
            else:
                context, _ = others.pop(0)
                await context.__aexit__(None, None, None)
            await wait_for(settled([subject, *(g for _, g in others)]), timeout_s=120)
            held = kafka_of(subject).holdings()
            assert held.consumers == 1  # the processor's; no consumer of an earlier one
            registry = subject.metrics.registry
            assert gauge(registry, "gateway_processor_producers") == len(held.producers)
            assert gauge(registry, "gateway_processor_partitions") == len(held.partitions)
        assert len(kafka_of(subject).holdings().producers) == PARTITIONS  # alone again
        load.stop.set()
        await sending

        acked = load.acked
        async with KafkaTopicReader(kafka_bootstrap, first.topic_outbound) as reader:
            await reader.read_until_true(lambda r: _delivered(r) >= {a.delivery_id for a in acked})
            events = await reader.drain(quiet_s=2.0)
    assert len(acked) > 50
    ids = Counter(dict(e.headers)["ce_id"] for e in events)
    assert max(ids.values()) == 1  # none twice
    by_order: dict[str, list[str]] = {}
    for event in events:
        body = json.loads(event.value)
        by_order.setdefault(event.key.decode(), []).append(body["deliveryId"])
    for order in {a.order for a in acked}:
        assert by_order[order] == [a.delivery_id for a in acked if a.order == order]


def _delivered(records: list[Any]) -> set[str]:
    return {json.loads(r.value)["deliveryId"] for r in records}


# --- real processes ----------------------------------------------------------------------


def poster(client: httpx.AsyncClient, replicas: list[GatewayProcess]) -> Any:
    turn = iter(range(10**9))

    async def post(body: bytes) -> httpx.Response:
        up = [r for r in replicas if r.process is not None and r.process.poll() is None]
        target = up[next(turn) % len(up)]
        url = f"{target.url}/webhooks/oc/test-token/outbound"
        return await client.post(url, content=body, headers=JSON)

    return post


async def _metric(client: httpx.AsyncClient, process: GatewayProcess, name: str) -> float:
    text = (await client.get(f"{process.metrics_url}/metrics")).text
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


async def test_sigterm_in_the_middle_of_rebalances_leaves_nothing_unclosed(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    topics = unique_topics(uuid.uuid4().hex[:8])
    made: list[GatewayProcess] = []

    def start(name: str) -> GatewayProcess:
        env = kafka_env(tmp_path / name, kafka_bootstrap, topics)
        process = GatewayProcess({**env, "GATEWAY_INSTANCE_ID": name}, tmp_path / f"{name}.log")
        process.start()
        made.append(process)
        return process

    live = [await asyncio.to_thread(start, "a"), await asyncio.to_thread(start, "b")]
    load = Load(senders=4, orders_per_sender=3)
    codes = {}
    async with httpx.AsyncClient(timeout=10.0) as client:
        sending = asyncio.create_task(load.run(poster(client, live)))
        await wait_for(lambda: _acked(load, 100), timeout_s=60)
        # A third replica joins; the first is told to stop while the group rebalances.
        live.append(await asyncio.to_thread(start, "c"))
        leaving = live.pop(0)
        codes[leaving.log_path.name] = await asyncio.to_thread(leaving.terminate)
        more = len(load.acked) + 100
        await wait_for(lambda: _acked(load, more), timeout_s=60)
        # Then a fourth joins and the second leaves at the same moment.
        live.append(await asyncio.to_thread(start, "d"))
        leaving = live.pop(0)
        codes[leaving.log_path.name] = await asyncio.to_thread(leaving.terminate)

        async def rebalanced() -> bool:
            names = ("gateway_processor_partitions", "gateway_processor_producers")
            figures = [[await _metric(client, r, n) for n in names] for r in live]
            return sum(p for p, _ in figures) == PARTITIONS and all(p == q for p, q in figures)

        await wait_for(rebalanced, timeout_s=90)
        load.stop.set()
        await sending
        for process in live:
            codes[process.log_path.name] = await asyncio.to_thread(process.terminate)

    assert codes == {p.log_path.name: 0 for p in made}
    assert {p.log_path.name: trouble(p.log_path) for p in made} == {
        p.log_path.name: [] for p in made
    }
    # Nothing accepted was lost or doubled: the last replicas' processors published
    # every event before they stopped, or a new one will; check with a fresh replica.
    last = await asyncio.to_thread(start, "e")
    acked = load.acked_ids()
    async with KafkaTopicReader(kafka_bootstrap, topics["topic_outbound"]) as reader:
        await reader.read_until_true(lambda r: _delivered(r) >= acked, timeout_s=120)
        events = await reader.drain(quiet_s=2.0)
    assert await asyncio.to_thread(last.terminate) == 0
    assert trouble(last.log_path) == []
    assert max(Counter(dict(e.headers)["ce_id"] for e in events).values()) == 1


async def test_a_gateway_on_a_fresh_broker_logs_no_errors(
    tmp_path: Path, own_broker: Broker
) -> None:
    # The broker has no offsets topic and no gateway topics yet: the first group look-up
    # finds no coordinator, the first fetches find no leader. All of it passes by itself.
    topics = unique_topics(uuid.uuid4().hex[:8])
    env = kafka_env(tmp_path / "data", own_broker.bootstrap, topics)
    gateway = GatewayProcess(env, tmp_path / "gateway.log")
    await asyncio.to_thread(gateway.start)
    load = Load(senders=2, orders_per_sender=2, limit=40)
    async with httpx.AsyncClient(timeout=10.0) as client:
        await load.run(poster(client, [gateway]))
    acked = load.acked_ids()
    async with KafkaTopicReader(own_broker.bootstrap, topics["topic_outbound"]) as reader:
        await reader.read_until_true(lambda r: _delivered(r) >= acked, timeout_s=120)
    assert await asyncio.to_thread(gateway.terminate) == 0
    assert trouble(gateway.log_path) == []


async def _acked(load: Load, count: int) -> bool:
    return len(load.acked) >= count

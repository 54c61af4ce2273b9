"""Batching, coalescing, paging and caching, counted by the simulator (real socket)."""

from __future__ import annotations

import asyncio
import math

import pytest

from gateway.ops.metrics import Metrics
from tests.simulation import Sim

from .conftest import ClientFactory, outbound_events, return_events, sample

# OC's SKU id shape; most of these do not exist in the simulated world, which does not
# matter for counting requests (OC answers the ones it knows).
SYNTHETIC_SKUS = [f"OC{9_000_000_000_000 + i:013d}" for i in range(300)]


async def test_fifty_concurrent_stock_lookups_make_one_request(
    sim: Sim, oc_client: ClientFactory
) -> None:
    events = await outbound_events(sim, 3, with_skus=True)
    known = list(dict.fromkeys(sku for e in events for sku in e.skus))
    skus = (known + SYNTHETIC_SKUS)[:50]
    metrics = Metrics()
    async with oc_client(metrics=metrics, oc_batch_window_ms=20.0) as client:
        await client.get_order("warm-up")  # token in hand
        rows = await asyncio.gather(*(client.stock([sku], None) for sku in skus))
        assert await sim.count("stock_snapshot_v2") == 1
        stats = (await sim.stats())["endpoints"]["stock_snapshot_v2"]
        assert stats["skus"] == 50
        assert {row.mf_sku_id for found in rows for row in found} >= set(known)
        assert all(
            row.mf_sku_id == sku for sku, found in zip(skus, rows, strict=True) for row in found
        )
        # The same look-ups again are answered from the cache.
        again = await asyncio.gather(*(client.stock([sku], None) for sku in skus))
    assert again == rows
    assert await sim.count("stock_snapshot_v2") == 1
    assert sample(metrics, "gateway_oc_cache_hits_total", endpoint="stock_snapshot") == 50
    assert sample(metrics, "gateway_oc_batch_size_sum", endpoint="stock_snapshot") == 50


async def test_more_than_two_hundred_skus_are_split_and_paged(
    sim: Sim, oc_client: ClientFactory
) -> None:
    async with oc_client() as client:
        await client.get_order("warm-up")
        await client.stock(SYNTHETIC_SKUS[:250], "UK")
    stats = (await sim.stats())["endpoints"]["stock_snapshot_v2"]
    assert stats["requests"] == 2
    assert stats["skus"] == 250


async def test_identical_order_lookups_in_flight_are_coalesced_into_one_query(
    sim: Sim, oc_client: ClientFactory
) -> None:
    events = await outbound_events(sim, 10)
    numbers = [e.order_number for e in events]
    metrics = Metrics()
    async with oc_client(metrics=metrics, oc_batch_window_ms=20.0) as client:
        await client.get_order("warm-up")
        orders = await asyncio.gather(*(client.get_order(n) for n in numbers * 3))
    assert [o.order_number if o else None for o in orders] == numbers * 3
    stats = (await sim.stats())["endpoints"]["outbound_query_v2"]
    distinct = len(set(numbers))  # two callbacks may concern one order
    assert stats["requests"] == 2  # the warm-up, then one query for all the orders
    assert stats["ids"] == 1 + distinct
    hits = sample(metrics, "gateway_oc_cache_hits_total", endpoint="outbound_query")
    assert hits == 3 * len(numbers) - distinct


async def test_return_lookups_are_batched_too(sim: Sim, oc_client: ClientFactory) -> None:
    events = await return_events(sim, 5)
    numbers = [e.return_number for e in events]
    skus = list(dict.fromkeys(sku for e in events for sku in e.skus))
    async with oc_client(oc_batch_window_ms=20.0) as client:
        await client.get_order("warm-up")
        returns = await asyncio.gather(*(client.get_return(n) for n in numbers))
        await asyncio.gather(*(client.return_stock([sku]) for sku in skus))
    assert [r.return_number if r else None for r in returns] == numbers
    endpoints = (await sim.stats())["endpoints"]
    assert endpoints["return_orders"]["requests"] == 1
    assert endpoints["return_stock"]["requests"] == 1
    assert endpoints["return_stock"]["ids"] == len(skus)


@pytest.mark.parametrize(("per_query", "queries"), [(50, 3), (60, 2), (200, 1)])
async def test_order_lookups_go_in_queries_of_the_configured_size(
    sim: Sim, oc_client: ClientFactory, per_query: int, queries: int
) -> None:
    events = await outbound_events(sim, 5)
    known = list(dict.fromkeys(e.order_number for e in events))
    numbers = known + [f"OCO{9_000_000_000 + i}" for i in range(120 - len(known))]
    async with oc_client(oc_orders_per_query=per_query) as client:
        await client.get_order("warm-up")
        found = await client.get_orders(numbers)
    stats = (await sim.stats())["endpoints"]["outbound_query_v2"]
    assert stats["requests"] == 1 + queries  # the warm-up, then 120 numbers
    assert stats["ids"] == 1 + 120
    assert {n for n, order in found.items() if order is not None} == set(known)


@pytest.mark.parametrize(
    ("list_limit", "requests", "refused", "learned"),
    [
        (None, 1, 0, 200),  # OC takes the 120 numbers at once
        (150, 1, 0, 200),
        (100, 3, 1, 60),  # 120 refused; two halves of 60
        (25, 11, 3, 15),  # 120, 60, 30 refused; eight queries of 15
    ],
)
async def test_an_order_list_oc_refuses_as_too_long_is_asked_again_in_halves(
    sim: Sim,
    oc_client: ClientFactory,
    list_limit: int | None,
    requests: int,
    refused: int,
    learned: int,
) -> None:
    events = await outbound_events(sim, 5)
    known = list(dict.fromkeys(e.order_number for e in events))
    numbers = known + [f"OCO{9_000_000_000 + i}" for i in range(120 - len(known))]
    await sim.faults(order_list_limit=list_limit)
    async with oc_client(oc_orders_per_query=200) as client:
        await client.get_order("warm-up")
        found = await client.get_orders(numbers)
        first = (await sim.stats())["endpoints"]["outbound_query_v2"]
        # From then on lists are as long as OC took: no refusal, no more queries than that.
        again = await client.get_orders([f"OCO{8_000_000_000 + i}" for i in range(120)])
        assert client.orders_per_query == learned
    stats = (await sim.stats())["endpoints"]["outbound_query_v2"]
    assert first["requests"] == 1 + requests  # the warm-up, then the 120
    assert first["outcomes"].get("limit_exceeded", 0) == refused
    assert stats["requests"] - first["requests"] == math.ceil(120 / learned)
    assert stats["outcomes"].get("limit_exceeded", 0) == refused
    assert {n for n, order in found.items() if order is not None} == set(known)
    assert set(found) == set(numbers)
    assert not any(again.values())


async def test_a_single_order_oc_refuses_as_too_many_fails_the_look_up(
    sim: Sim, oc_client: ClientFactory
) -> None:
    await sim.faults(order_list_limit=1)
    async with oc_client(oc_orders_per_query=4) as client:
        found = await client.get_orders(["OCO1", "OCO2"])
        assert found == {"OCO1": None, "OCO2": None}
        assert client.orders_per_query == 1

"""Reconciliation queries by time range against a busy simulated account: windows of at
most 7 days, split further when OC refuses one for matching more than 1,000 orders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.simulator.app import create_app
from tests.simulation import Sim, serving

from .conftest import ClientFactory, world_config

ORDERS = 2500  # created over the 3 days before the simulator starts: > 1,000 per window


@pytest.fixture(scope="module")
async def sim_url() -> AsyncIterator[str]:
    """This module's simulator: a busy account (overrides the package's `sim_url`)."""
    async with serving(create_app(world_config(orders=ORDERS, returns=300))) as url:
        yield url


async def world_counts(sim: Sim) -> tuple[int, int]:
    summary = (await sim.control.get("/_sim/world")).json()
    return sum(summary["orders"].values()), sum(summary["returns"].values())


async def test_outbound_orders_are_walked_in_split_windows_once_each(
    sim: Sim, oc_client: ClientFactory
) -> None:
    orders, _ = await world_counts(sim)
    now = datetime.now(UTC)
    async with oc_client() as client:
        found = [o async for o in client.iter_outbound_orders(now - timedelta(days=9), now)]
    numbers = [o.order_number for o in found]
    # the world's orders, plus the one of OC's documented examples the simulator adds
    assert len(numbers) == len(set(numbers)) == orders == ORDERS + 1
    stats = (await sim.stats())["endpoints"]["outbound_query_v2"]["outcomes"]
    # 9 days -> 7 + 2 days; the 2 days hold most orders, are refused and asked as 1 + 1.
    assert stats.get("limit_exceeded", 0) >= 1
    assert stats["ok"] >= 3
    assert stats.get("bad_request", 0) == 0  # never a window over 7 days
    assert all(
        now - timedelta(days=9) <= o.order_creation_time <= now
        for o in found
        if o.order_creation_time
    )


async def test_return_orders_are_walked_page_by_page_once_each(
    sim: Sim, oc_client: ClientFactory
) -> None:
    _, returns = await world_counts(sim)
    now = datetime.now(UTC)
    async with oc_client() as client:
        found = [r async for r in client.iter_return_orders(now - timedelta(days=15), now)]
    numbers = [r.return_number for r in found]
    assert len(numbers) == len(set(numbers)) == returns
    assert (await sim.count("return_orders", "ok")) >= 3  # 15 days -> three windows

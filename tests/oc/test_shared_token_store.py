"""Processes sharing one token store when OC rotates refresh tokens (simulator over a real
socket): each refresh starts from the token stored now, so every process keeps the grant.
Two replicas with stores of their own cannot: the second uses a token the first spent."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gateway.errors import OcAuthError
from tests.simulation import Sim

from .conftest import ClientFactory, outbound_events
from .test_sim_auth import grant_refresh_token


async def test_replicas_sharing_a_store_follow_each_others_rotations(
    sim: Sim, oc_client: ClientFactory, tmp_path: Path
) -> None:
    await sim.faults(rotate_refresh_tokens=True)
    granted = await grant_refresh_token(sim)
    store = tmp_path / "shared-volume" / "oc-token.json"
    [event] = await outbound_events(sim, 1)
    same = {"oc_refresh_token": granted, "oc_token_store": store, "oc_cache_ttl_s": 0}
    async with oc_client(**same) as first, oc_client(**same) as second:
        for _ in range(3):
            assert await first.get_order(event.order_number) is not None
            assert await second.get_order(event.order_number) is not None
            await sim.expire_tokens()
        # Both meet the refused token at once: their refreshes take turns on the lock.
        found = await asyncio.gather(
            first.get_order(event.order_number), second.get_order(event.order_number)
        )
    assert all(order is not None for order in found)
    assert await sim.count("oauth_token", "invalid_grant") == 0
    assert await sim.count("oauth_token", "ok_refresh_token") == 8
    assert json.loads(store.read_text())["refresh_token"] != granted


async def test_replicas_with_stores_of_their_own_lose_a_rotating_grant(
    sim: Sim, oc_client: ClientFactory, tmp_path: Path
) -> None:
    await sim.faults(rotate_refresh_tokens=True)
    granted = await grant_refresh_token(sim)
    [event] = await outbound_events(sim, 1)
    async with (
        oc_client(oc_refresh_token=granted, oc_token_store=tmp_path / "a.json") as first,
        oc_client(oc_refresh_token=granted, oc_token_store=tmp_path / "b.json") as second,
    ):
        assert await first.get_order(event.order_number) is not None
        with pytest.raises(OcAuthError, match="invalid_grant"):
            await second.get_order(event.order_number)

"""OAuth and signing against the simulator over a real socket: bootstrap, refresh ahead of
expiry, recovery from a refused token (401 and 200 + success:false), rotation persisted."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from gateway.errors import OcAuthError, OcRejected
from gateway.ops.metrics import Metrics
from tests.clocks import JumpClock
from tests.simulation import Sim

from .conftest import CLIENT_KEY, ClientFactory, outbound_events, return_events, sample


async def test_bootstrap_token_and_signature_are_accepted(
    sim: Sim, oc_client: ClientFactory
) -> None:
    [event] = await outbound_events(sim, 1)
    [ret] = await return_events(sim, 1)
    metrics = Metrics()
    async with oc_client(metrics=metrics) as client:
        order, returned = await asyncio.gather(
            client.get_order(event.order_number), client.get_return(ret.return_number)
        )
    assert order is not None
    assert order.order_number == event.order_number
    assert returned is not None
    assert returned.return_number == ret.return_number
    assert await sim.count("oauth_token", "ok_refresh_token") == 1  # one refresh, shared
    assert await sim.count("outbound_query_v2", "ok") == 1
    assert await sim.count("return_orders", "ok") == 1
    assert sample(metrics, "gateway_oc_token_refreshes_total", outcome="ok") == 1


async def test_a_wrong_secret_fails_the_signature_check_on_the_wire(
    sim: Sim, oc_client: ClientFactory
) -> None:
    [event] = await outbound_events(sim, 1)
    async with oc_client(oc_secret_key="not-the-secret") as client:
        with pytest.raises(OcRejected, match="signature"):
            await client.get_order(event.order_number)
    assert await sim.count("outbound_query_v2", "signature_failure") == 1
    assert await sim.count("outbound_query_v2", "auth_failure") == 0


async def test_the_token_is_refreshed_ahead_of_expiry(sim: Sim, oc_client: ClientFactory) -> None:
    await sim.faults(token_ttl_s=60)
    events = await outbound_events(sim, 2)
    clock = JumpClock()
    async with oc_client(clock=clock, oc_cache_ttl_s=0) as client:
        await client.get_order(events[0].order_number)
        clock.jump(60 - 12 + 0.5)  # past the refresh point (a fifth of 60 s before expiry)
        await client.get_order(events[1].order_number)
    assert await sim.count("oauth_token", "ok_refresh_token") == 2
    assert await sim.count("outbound_query_v2", "auth_failure") == 0
    assert await sim.count("outbound_query_v2", "ok") == 2


@pytest.mark.parametrize("token_failure", ["http_200", "http_401"])
async def test_a_refused_token_is_refreshed_once_and_the_call_retried(
    sim: Sim, oc_client: ClientFactory, token_failure: str
) -> None:
    await sim.faults(token_failure=token_failure)
    events = await outbound_events(sim, 1)
    returns = await return_events(sim, 1)
    metrics = Metrics()
    async with oc_client(metrics=metrics, oc_max_retries=0) as client:
        await client.get_order(events[0].order_number)
        await sim.expire_tokens()
        # Concurrent calls on both envelopes meet the refused token: one refresh for all.
        order, ret, _ = await asyncio.gather(
            client.get_order(events[0].order_number + "-X"),
            client.get_return(returns[0].return_number),
            client.return_stock(returns[0].skus),
        )
    assert order is None
    assert ret is not None
    assert await sim.count("oauth_token", "ok_refresh_token") == 2
    assert await sim.count("outbound_query_v2", "auth_failure") == 1
    assert await sim.count("return_orders", "auth_failure") == 1
    assert await sim.count("return_stock", "auth_failure") == 1
    assert await sim.count("return_orders", "ok") == 1
    assert await sim.count("return_stock", "ok") == 1
    assert (
        sample(metrics, "gateway_oc_requests_total", endpoint="outbound_query", outcome="ok") == 2
    )


async def test_a_refresh_token_that_oc_refuses_is_an_auth_error(
    sim: Sim, oc_client: ClientFactory
) -> None:
    metrics = Metrics()
    async with oc_client(metrics=metrics, oc_refresh_token="revoked") as client:
        with pytest.raises(OcAuthError):
            await client.get_order("OCO0000000000001GB")
    assert await sim.count("oauth_token", "invalid_grant") == 1
    assert await sim.count("outbound_query_v2") == 0
    assert sample(metrics, "gateway_oc_token_refreshes_total", outcome="rejected") == 1


async def grant_refresh_token(sim: Sim) -> str:
    """A refresh token from OC's authorization-code flow (not the simulator's bootstrap)."""
    redirect = "https://erp.example/oc/callback"
    authorize = await sim.control.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": CLIENT_KEY,
            "redirect_uri": redirect,
            "state": "acct-1",
        },
    )
    assert authorize.status_code == 302
    code = httpx.URL(authorize.headers["location"]).params["code"]
    token = await sim.control.post(
        "/oauth/token",
        params={
            "client_id": CLIENT_KEY,
            "grant_type": "authorization_code",
            "redirect_uri": redirect,
            "code": code,
        },
    )
    token.raise_for_status()
    refresh: str = token.json()["refresh_token"]
    return refresh


async def test_a_rotated_refresh_token_is_persisted_and_used_after_a_restart(
    sim: Sim, oc_client: ClientFactory, tmp_path: Path
) -> None:
    await sim.faults(rotate_refresh_tokens=True)
    granted = await grant_refresh_token(sim)
    store = tmp_path / "secrets" / "oc-token.json"
    [event] = await outbound_events(sim, 1)
    async with oc_client(oc_refresh_token=granted, oc_token_store=store) as client:
        assert await client.get_order(event.order_number) is not None
    first = json.loads(store.read_text())["refresh_token"]
    assert first != granted  # rotated, and the granted token is now dead at OC
    assert store.stat().st_mode & 0o777 == 0o600
    # A restart with the same configuration starts from the stored token, not the dead one.
    async with oc_client(oc_refresh_token=granted, oc_token_store=store) as client:
        assert await client.get_order(event.order_number) is not None
    assert json.loads(store.read_text())["refresh_token"] not in (granted, first)
    assert await sim.count("oauth_token", "ok_refresh_token") == 2
    assert await sim.count("oauth_token", "invalid_grant") == 0

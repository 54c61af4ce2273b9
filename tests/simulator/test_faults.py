"""Misbehaviour on demand and the request counters, over a real socket."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from gateway.simulator.faults import FaultInjector, FaultSettings
from schemas import oc_api

from .conftest import OcClient, RunningSimulator

SNAPSHOT = {"data": {"pageSize": 1}}


async def _set(oc: OcClient, **changes: Any) -> httpx.Response:
    response = await oc.http.post(oc.base + "/_sim/faults", json=changes)
    assert response.status_code == 200, response.text
    return response


async def _snapshot(oc: OcClient) -> httpx.Response:
    return await oc.call("POST", oc_api.STOCK_SNAPSHOT_PATH, SNAPSHOT)


async def test_faults_can_be_read_and_changed_at_run_time(oc: OcClient) -> None:
    initial = (await oc.http.get(oc.base + "/_sim/faults")).json()
    assert initial["error_rate"] == 0
    changed = (await _set(oc, error_rate=0.5, latency_ms=1)).json()
    assert (changed["error_rate"], changed["latency_ms"]) == (0.5, 1)
    reset = (await oc.http.post(oc.base + "/_sim/faults/reset")).json()
    assert reset == initial


@pytest.mark.parametrize(
    "body", [{"error_rate": 2}, {"no_such_fault": True}, {"token_failure": "smoke"}, [1]]
)
async def test_invalid_fault_settings_are_refused(oc: OcClient, body: Any) -> None:
    response = await oc.http.post(oc.base + "/_sim/faults", json=body)
    assert response.status_code == 400
    assert (await oc.http.get(oc.base + "/_sim/faults")).json()["error_rate"] == 0


async def test_error_rate_answers_http_500(oc: OcClient, simulator: RunningSimulator) -> None:
    await _set(oc, error_rate=1.0)
    response = await _snapshot(oc)
    assert response.status_code == 500
    assert simulator.sim.stats.count("stock_snapshot_v2", "fault_500") == 1


async def test_success_false_rate_answers_busy_in_http_200(oc: OcClient) -> None:
    await _set(oc, success_false_rate=1.0)
    response = await _snapshot(oc)
    assert response.status_code == 200
    answer = oc_api.parse_stock_snapshot_response(response.content)
    assert answer.is_failure()
    assert not answer.is_auth_failure()
    body = {"data": {"uniqueIdList": ["x"]}}
    returns = await oc.call("POST", oc_api.RETURN_STOCK_PATH, body)
    assert oc_api.parse_return_stock_response(returns.content).is_failure()


async def test_rate_limit_answers_429_with_retry_after(oc: OcClient) -> None:
    await _set(oc, rate_limit_rate=1.0, retry_after_s=3)
    response = await _snapshot(oc)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert oc_api.parse_stock_snapshot_response(response.content).is_rate_limited()


async def test_oc_goes_down_and_comes_back(oc: OcClient, simulator: RunningSimulator) -> None:
    await _set(oc, down=True)
    down = await _snapshot(oc)
    assert down.status_code == 503
    assert "retry-after" in down.headers
    token = await oc.http.post(
        oc.base + "/oauth/token",
        params={"client_id": "x", "grant_type": "refresh_token", "refresh_token": "y"},
    )
    assert token.status_code == 503
    assert (await oc.http.get(oc.base + "/_sim/stats")).status_code == 200
    await _set(oc, down=False)
    assert (await _snapshot(oc)).status_code == 200
    outcomes = simulator.sim.stats.snapshot()["endpoints"]["stock_snapshot_v2"]["outcomes"]
    assert outcomes == {"ok": 1, "outage": 1}


async def test_an_outage_window_ends_by_itself(oc: OcClient) -> None:
    await _set(oc, outage_until=time.time() + 3600)
    assert (await _snapshot(oc)).status_code == 503
    await _set(oc, outage_for_s=0)
    assert (await _snapshot(oc)).status_code == 200
    past = FaultSettings().updated({"outage_until": "2020-01-01T00:00:00+0000"}, time.time())
    assert past.outage_until == 1577836800.0
    injector = FaultInjector(past, seed=1)
    assert not injector.is_down()


async def test_latency_is_added(oc: OcClient) -> None:
    await _set(oc, latency_ms=150)
    began = time.perf_counter()
    response = await _snapshot(oc)
    assert response.status_code == 200
    assert time.perf_counter() - began >= 0.15


def test_fault_decisions_are_deterministic_per_seed() -> None:
    settings = FaultSettings(error_rate=0.2, success_false_rate=0.2, rate_limit_rate=0.1)

    def decisions(seed: int) -> list[str | None]:
        injector = FaultInjector(settings, seed=seed)
        return [fault.kind if (fault := injector.decide()) else None for _ in range(200)]

    first = decisions(7)
    assert first == decisions(7)
    assert first != decisions(8)
    shares = {kind: first.count(kind) / 200 for kind in set(first)}
    assert 0.1 < shares["fault_500"] < 0.3
    assert 0.1 < shares["fault_success_false"] < 0.3
    assert 0.03 < shares["rate_limited"] < 0.2
    assert 0.3 < shares[None] < 0.7


async def test_counters_per_endpoint_and_outcome(oc: OcClient, simulator: RunningSimulator) -> None:
    await oc.http.post(oc.base + "/_sim/stats/reset")
    skus = sorted(simulator.sim.world.skus)[:3]
    body = {"data": {"skuList": [{"mfSkuId": s} for s in skus]}}
    await oc.call("POST", oc_api.STOCK_SNAPSHOT_PATH, body)
    await oc.call("POST", oc_api.STOCK_SNAPSHOT_PATH, body)
    await oc.call("POST", oc_api.STOCK_SNAPSHOT_PATH, {"data": {"pageSize": 500}})
    await oc.call("POST", oc_api.OUTBOUND_QUERY_PATH, {"data": {}}, sign=False)
    await oc.http.post(oc.base + "/_sim/callbacks/next", params={"count": 4})
    stats = (await oc.http.get(oc.base + "/_sim/stats")).json()
    assert stats["total"] == 4
    snapshot = stats["endpoints"]["stock_snapshot_v2"]
    assert snapshot == {
        "requests": 3,
        "outcomes": {"limit_exceeded": 1, "ok": 2},
        "ids": 6,
        "skus": 6,
    }
    assert stats["endpoints"]["outbound_query_v2"]["outcomes"] == {"signature_failure": 1}
    assert stats["outcomes"] == {"limit_exceeded": 1, "ok": 2, "signature_failure": 1}
    assert stats["callbacksGenerated"] == 4
    cleared = (await oc.http.post(oc.base + "/_sim/stats/reset")).json()
    assert (cleared["total"], cleared["endpoints"]) == (0, {})


async def test_faults_can_be_limited_to_named_endpoints(
    oc: OcClient, simulator: RunningSimulator
) -> None:
    await _set(oc, endpoints=["return_stock"], error_rate=1.0, down=False)
    assert (await _snapshot(oc)).status_code == 200
    stock = await oc.call("POST", oc_api.RETURN_STOCK_PATH, {"data": {"uniqueIdList": ["x"]}})
    assert stock.status_code == 500
    assert simulator.sim.stats.count("return_stock", "fault_500") == 1
    await _set(oc, endpoints=["oauth_token"], down=True)
    assert (await _snapshot(oc)).status_code == 200  # the business API stays up
    refused = await oc.http.post(
        oc.base + "/oauth/token",
        params={"client_id": "x", "grant_type": "refresh_token", "refresh_token": "y"},
    )
    assert refused.status_code == 503


def test_an_injector_limited_to_endpoints_leaves_the_others_alone() -> None:
    injector = FaultInjector(FaultSettings(error_rate=1.0, endpoints=["a"]), seed=1)
    assert injector.decide("a") is not None
    assert injector.decide("b") is None
    assert injector.latency_s("b") == 0.0
    assert FaultInjector(FaultSettings(error_rate=1.0), seed=1).decide("b") is not None

"""Retries, Retry-After, the breaker and the enricher's deadline, against the simulator's
faults over a real socket."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from gateway.errors import OcTransient
from gateway.oc.breaker import BreakerState
from gateway.ops.metrics import Metrics
from gateway.process.enricher import OcEnricher
from schemas.events import OcReturnState
from tests.clocks import JumpClock
from tests.simulation import Sim
from tests.waiting import wait_for

from .conftest import (
    ClientFactory,
    enrich_outbound,
    enrich_return,
    outbound_events,
    return_events,
    sample,
)


async def count_is(sim: Sim, endpoint: str, outcome: str, at_least: int = 1) -> bool:
    return await sim.count(endpoint, outcome) >= at_least


async def test_429_waits_for_retry_after_then_succeeds(sim: Sim, oc_client: ClientFactory) -> None:
    events = await outbound_events(sim, 2)
    metrics = Metrics()
    async with oc_client(metrics=metrics) as client:
        await client.get_order(events[0].order_number)  # token in hand
        await sim.faults(rate_limit_rate=1.0, retry_after_s=1)
        started = time.monotonic()
        call = asyncio.create_task(client.get_order(events[1].order_number))
        await wait_for(lambda: count_is(sim, "outbound_query_v2", "rate_limited"))
        await sim.faults(rate_limit_rate=0.0)
        order = await call
        elapsed = time.monotonic() - started
    assert order is not None
    assert elapsed >= 1.0
    assert await sim.count("outbound_query_v2", "rate_limited") == 1
    assert await sim.count("outbound_query_v2", "ok") == 2
    assert (
        sample(metrics, "gateway_oc_requests_total", endpoint="outbound_query", outcome="throttled")
        == 1
    )


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [("error_rate", "fault_500"), ("success_false_rate", "fault_success_false")],
)
async def test_transient_failures_are_retried_until_oc_answers(
    sim: Sim, oc_client: ClientFactory, fault: str, outcome: str
) -> None:
    [event] = await outbound_events(sim, 1)
    async with oc_client(oc_max_retries=5) as client:
        await client.get_order("warm-up")  # token in hand
        await sim.faults(**{fault: 1.0})
        call = asyncio.create_task(client.get_order(event.order_number))
        await wait_for(lambda: count_is(sim, "outbound_query_v2", outcome))
        await sim.faults(**{fault: 0.0})
        order = await call
    assert order is not None
    assert await sim.count("outbound_query_v2", "ok") == 2  # the warm-up and this one


async def test_retries_stop_after_the_configured_attempts(
    sim: Sim, oc_client: ClientFactory
) -> None:
    [event] = await outbound_events(sim, 1)
    async with oc_client(oc_max_retries=2, oc_breaker_failures=10) as client:
        await client.get_order("warm-up")
        await sim.faults(down=True, retry_after_s=0)
        with pytest.raises(OcTransient):
            await client.get_order(event.order_number)
    assert await sim.count("outbound_query_v2", "outage") == 3


async def test_outage_opens_the_breaker_then_a_trial_closes_it(
    sim: Sim, oc_client: ClientFactory
) -> None:
    [event] = await outbound_events(sim, 1, with_skus=True)
    clock, metrics = JumpClock(), Metrics()
    settings = {"oc_max_retries": 0, "oc_breaker_failures": 2, "oc_breaker_reset_s": 30.0}
    async with oc_client(clock=clock, metrics=metrics, **settings) as client:
        enricher = OcEnricher(client, clock)
        await client.get_order("warm-up")  # token in hand
        await sim.faults(down=True, retry_after_s=0)
        for _ in range(2):
            result = await enrich_outbound(
                enricher, event.order_number, event.skus, event.region, 2.0
            )
            assert result.missing == ("order", "stock")
        for endpoint in ("outbound_query", "stock_snapshot"):
            state = sample(metrics, "gateway_oc_breaker_state", endpoint=endpoint)
            assert state == BreakerState.OPEN
        sent = (await sim.stats())["total"]

        started = time.monotonic()
        result = await enrich_outbound(enricher, event.order_number, event.skus, event.region, 2.0)
        assert time.monotonic() - started < 0.1  # refused at once, not after the deadline
        assert result.missing == ("order", "stock")
        assert (await sim.stats())["total"] == sent  # nothing reached OC
        open_refusals = sample(
            metrics, "gateway_oc_requests_total", endpoint="outbound_query", outcome="breaker_open"
        )
        assert open_refusals == 1

        await sim.faults(down=False)
        clock.jump(30.0)  # the reset period: the next call is the trial
        result = await enrich_outbound(enricher, event.order_number, event.skus, event.region, 2.0)
        assert result.missing == ()
        assert result.entity is not None
        assert result.entity.order_number == event.order_number
        assert result.stock
        for endpoint in ("outbound_query", "stock_snapshot"):
            state = sample(metrics, "gateway_oc_breaker_state", endpoint=endpoint)
            assert state == BreakerState.CLOSED


async def test_slow_oc_misses_the_deadline_and_the_answer_serves_the_follow_up(
    sim: Sim, oc_client: ClientFactory
) -> None:
    [event] = await outbound_events(sim, 1, with_skus=True)
    [ret] = await return_events(sim, 1)
    async with oc_client(oc_cache_ttl_s=60.0) as client:
        enricher = OcEnricher(client)
        await client.get_order("warm-up")  # token in hand
        await sim.faults(latency_ms=800)
        started = time.monotonic()
        late = await enrich_outbound(enricher, event.order_number, event.skus, event.region, 0.2)
        assert time.monotonic() - started < 0.5
        assert late.missing == ("order", "stock")
        late_return = await enrich_return(enricher, ret.return_number, ret.skus, 0.2)
        assert late_return.missing == ("return_order", "return_stock")
        # The look-ups went on in the background and filled the cache.
        await wait_for(lambda: count_is(sim, "stock_snapshot_v2", "ok"))
        await wait_for(lambda: count_is(sim, "return_stock", "ok"))
        await wait_for(lambda: count_is(sim, "outbound_query_v2", "ok", at_least=2))
        sent = (await sim.stats())["total"]
        follow_up = await enrich_outbound(
            enricher, event.order_number, event.skus, event.region, 0.2
        )
        follow_up_return = await enrich_return(enricher, ret.return_number, ret.skus, 0.2)
        assert (await sim.stats())["total"] == sent
    assert follow_up.missing == ()
    assert follow_up.entity is not None
    assert follow_up.entity.status != "unknown"
    assert {level.mf_sku_id for level in follow_up.stock} <= set(event.skus)
    assert follow_up_return.missing == ()
    assert isinstance(follow_up_return.entity, OcReturnState)
    assert follow_up_return.entity.return_number == ret.return_number


async def test_a_failing_token_endpoint_is_retried_like_any_transient_failure(
    sim: Sim, oc_client: ClientFactory
) -> None:
    [event] = await outbound_events(sim, 1)
    metrics = Metrics()
    async with oc_client(metrics=metrics, oc_max_retries=5) as client:
        await sim.faults(error_rate=1.0)
        call = asyncio.create_task(client.get_order(event.order_number))
        await wait_for(lambda: count_is(sim, "oauth_token", "fault_500"))
        await sim.faults(error_rate=0.0)
        assert await call is not None
    assert await sim.count("outbound_query_v2", "ok") == 1
    assert sample(metrics, "gateway_oc_token_refreshes_total", outcome="error") >= 1
    assert sample(metrics, "gateway_oc_token_refreshes_total", outcome="ok") == 1


async def test_after_a_429_reconciliation_waits_longer_than_enrichment(
    sim: Sim, oc_client: ClientFactory
) -> None:
    [event] = await outbound_events(sim, 1)
    [ret] = await return_events(sim, 1)
    async with oc_client() as client:
        await client.get_order("warm-up")
        await sim.faults(rate_limit_rate=1.0, retry_after_s=1)
        throttled = asyncio.create_task(client.get_order(event.order_number))
        await wait_for(lambda: count_is(sim, "outbound_query_v2", "rate_limited"))
        await sim.faults(rate_limit_rate=0.0)
        queries_before = await sim.count("outbound_query_v2")
        now = datetime.now(UTC)

        async def reconcile() -> int:
            window = client.iter_outbound_orders(now - timedelta(hours=1), now)
            return len([order async for order in window])

        reconciliation = asyncio.create_task(reconcile())
        assert await client.get_return(ret.return_number) is not None  # after Retry-After
        assert await throttled is not None
        # Enrichment went on after Retry-After; reconciliation is still holding back.
        assert await sim.count("outbound_query_v2") == queries_before + 1
        assert not reconciliation.done()
        await reconciliation
    assert await sim.count("outbound_query_v2") == queries_before + 2

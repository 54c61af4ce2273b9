"""The enricher over the simulator: complete enrichment for outbound and return events,
stock taken from the order when the callback names no SKUs, and a batch's needs answered
together."""

from __future__ import annotations

from gateway.process.enricher import OcEnricher
from gateway.process.kinds import OUTBOUND
from schemas.events import OcOrderState, OcReturnState
from tests.simulation import Sim

from .conftest import (
    ClientFactory,
    enrich_outbound,
    enrich_return,
    outbound_events,
    return_events,
)


async def test_outbound_event_gets_order_state_and_stock_of_its_skus(
    sim: Sim, oc_client: ClientFactory
) -> None:
    [event] = await outbound_events(sim, 1, with_skus=True)
    async with oc_client() as client:
        result = await enrich_outbound(
            OcEnricher(client), event.order_number, event.skus, event.region, 2.0
        )
    assert result.missing == ()
    assert isinstance(result.entity, OcOrderState)
    assert result.entity.order_number == event.order_number
    assert result.entity.status != "unknown"
    assert result.entity.shipments
    assert result.stock
    assert {level.mf_sku_id for level in result.stock} <= set(event.skus)
    assert {level.location for level in result.stock} == {event.region}
    assert all(level.location_kind == "service_region" for level in result.stock)


async def test_stock_comes_from_the_order_when_the_callback_names_no_skus(
    sim: Sim, oc_client: ClientFactory
) -> None:
    [event] = await outbound_events(sim, 1, with_skus=True)
    async with oc_client() as client:
        result = await enrich_outbound(OcEnricher(client), event.order_number, [], None, 2.0)
    assert result.missing == ()
    assert {level.mf_sku_id for level in result.stock} == set(event.skus)
    assert {level.location for level in result.stock} == {event.region}


async def test_return_event_gets_the_return_order_and_its_return_stock(
    sim: Sim, oc_client: ClientFactory
) -> None:
    events = await return_events(sim, 10)
    async with oc_client() as client:
        enricher = OcEnricher(client)
        results = [await enrich_return(enricher, e.return_number, e.skus, 2.0) for e in events]
    for event, result in zip(events, results, strict=True):
        assert result.missing == ()
        assert isinstance(result.entity, OcReturnState)
        assert result.entity.return_number == event.return_number
        assert all(level.location_kind == "return_warehouse" for level in result.stock)
        assert {level.mf_sku_id for level in result.stock} <= set(event.skus)
    assert any(result.stock for result in results)


async def test_a_batch_of_needs_is_answered_in_one_call_per_endpoint(
    sim: Sim, oc_client: ClientFactory
) -> None:
    events = await outbound_events(sim, 20, with_skus=True)
    needs = [OUTBOUND.need(e.order_number, e.skus, e.region) for e in events]
    async with oc_client() as client:
        await client.get_order("warm-up")  # token in hand
        orders = await sim.count("outbound_query_v2")
        stock = await sim.count("stock_snapshot_v2")
        answers = await OcEnricher(client).enrich(needs, 2.0)
        asked_orders = await sim.count("outbound_query_v2") - orders
        asked_stock = await sim.count("stock_snapshot_v2") - stock
    assert set(answers) == set(needs)
    assert all(a.missing == () for a in answers.values())
    for need, answer in answers.items():
        assert isinstance(answer.entity, OcOrderState)
        assert answer.entity.order_number == need.key
    assert asked_orders == 1  # twenty orders, one query
    assert 1 <= asked_stock <= 2

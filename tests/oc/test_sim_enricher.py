"""The enricher over the simulator: complete enrichment for outbound and return events,
and stock taken from the order when the callback names no SKUs."""

from __future__ import annotations

from gateway.oc.enricher import OcEnricher
from tests.simulation import Sim

from .conftest import ClientFactory, outbound_events, return_events


async def test_outbound_event_gets_order_state_and_stock_of_its_skus(
    sim: Sim, oc_client: ClientFactory
) -> None:
    [event] = await outbound_events(sim, 1, with_skus=True)
    async with oc_client() as client:
        result = await OcEnricher(client).outbound(
            event.order_number, event.skus, event.region, 2.0
        )
    assert result.missing == ()
    assert result.order is not None
    assert result.order.order_number == event.order_number
    assert result.order.status != "unknown"
    assert result.order.shipments
    assert result.stock
    assert {level.mf_sku_id for level in result.stock} <= set(event.skus)
    assert {level.location for level in result.stock} == {event.region}
    assert all(level.location_kind == "service_region" for level in result.stock)


async def test_stock_comes_from_the_order_when_the_callback_names_no_skus(
    sim: Sim, oc_client: ClientFactory
) -> None:
    [event] = await outbound_events(sim, 1, with_skus=True)
    async with oc_client() as client:
        result = await OcEnricher(client).outbound(event.order_number, [], None, 2.0)
    assert result.missing == ()
    assert {level.mf_sku_id for level in result.stock} == set(event.skus)
    assert {level.location for level in result.stock} == {event.region}


async def test_return_event_gets_the_return_order_and_its_return_stock(
    sim: Sim, oc_client: ClientFactory
) -> None:
    events = await return_events(sim, 10)
    async with oc_client() as client:
        enricher = OcEnricher(client)
        results = [await enricher.returns(e.return_number, e.skus, 2.0) for e in events]
    for event, result in zip(events, results, strict=True):
        assert result.missing == ()
        assert result.return_order is not None
        assert result.return_order.return_number == event.return_number
        assert all(level.location_kind == "return_warehouse" for level in result.stock)
        assert {level.mf_sku_id for level in result.stock} <= set(event.skus)
    assert any(result.stock for result in results)

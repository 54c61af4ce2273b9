"""Callbacks the simulator hands out agree with what its look-ups answer afterwards."""

from __future__ import annotations

from collections import Counter

from gateway.simulator.data import SimCallback
from gateway.simulator.entities import ORDER_STATUSES, RESERVING_STATUSES
from schemas import oc_api
from schemas.callbacks import (
    InventoryCallback,
    OcOutboundOrder,
    OutboundCallback,
    ReturnCallback,
    parse_callback,
)
from schemas.oc_status import OC_ORDER_STATUSES

from .conftest import OcClient, RunningSimulator


async def _next(oc: OcClient, count: int, kind: str, **more: str) -> list[SimCallback]:
    response = await oc.http.post(
        oc.base + "/_sim/callbacks/next", params={"count": count, "kind": kind, **more}
    )
    assert response.status_code == 200
    return [SimCallback.from_json(c) for c in response.json()["callbacks"]]


async def test_an_outbound_callback_matches_order_query_and_stock(
    oc: OcClient, simulator: RunningSimulator
) -> None:
    for _ in range(40):
        [callback] = await _next(oc, 1, "outbound")
        parsed = parse_callback("outbound", callback.body)
        assert isinstance(parsed, OutboundCallback)
        item = parsed.data[0]
        query = {"data": {"orderNumberList": [{"orderNumber": item.order_number}]}}
        answer = oc_api.parse_outbound_query_response(
            (await oc.call("POST", oc_api.OUTBOUND_QUERY_PATH, query)).content
        )
        assert answer.data is not None
        [order] = answer.data
        assert order.raw_status() == item.raw_status()
        assert order.occurred_at() == item.occurred_at()
        assert [e.tracking_number for e in order.tracking_number_list] == [
            e.tracking_number for e in item.tracking_number_list
        ]
        assert [(s.mf_sku_id, s.sku_quantity) for s in order.sku_lines()] == [
            (s.mf_sku_id, s.sku_quantity) for s in item.sku_lines()
        ]
    await _reserved_stock_matches_open_orders(oc, simulator)


async def _reserved_stock_matches_open_orders(oc: OcClient, simulator: RunningSimulator) -> None:
    expected: Counter[tuple[str, str]] = Counter()
    for order in simulator.sim.world.orders.values():
        if order.status in RESERVING_STATUSES:
            for line in order.lines:
                expected[(line.mf_sku_id, order.region)] += line.quantity
    seen = 0
    page = 1
    while True:
        body = {"data": {"pageNumber": page, "pageSize": 200}}
        answer = oc_api.parse_stock_snapshot_response(
            (await oc.call("POST", oc_api.STOCK_SNAPSHOT_PATH, body)).content
        )
        assert answer.data is not None
        for row in answer.data.sku_list:
            assert row.reserved_allocated == expected[(row.mf_sku_id, row.service_region or "")]
            seen += 1
        if len(answer.data.sku_list) < 200:
            break
        page += 1
    assert seen == len(simulator.sim.world.stock)


async def test_an_inventory_callback_matches_the_stock_snapshot(oc: OcClient) -> None:
    for _ in range(10):
        [callback] = await _next(oc, 1, "inventory")
        parsed = parse_callback("inventory", callback.body)
        assert isinstance(parsed, InventoryCallback)
        item = parsed.data[0]
        body = {
            "data": {
                "skuList": [{"mfSkuId": item.mf_sku_id}],
                "serviceRegionList": [{"serviceRegion": item.service_region}],
            }
        }
        answer = oc_api.parse_stock_snapshot_response(
            (await oc.call("POST", oc_api.STOCK_SNAPSHOT_PATH, body)).content
        )
        assert answer.data is not None
        [row] = answer.data.sku_list
        assert (row.available, row.unfulfillable) == (item.available, item.unfulfillable)


async def test_a_return_callback_matches_the_return_query_and_return_stock(oc: OcClient) -> None:
    restocked = 0
    for _ in range(150):
        [callback] = await _next(oc, 1, "return")
        parsed = parse_callback("return", callback.body)
        assert isinstance(parsed, ReturnCallback)
        item = parsed.data[0]
        assert item.return_number is not None
        query = oc_api.ReturnOrderQuery(return_numbers=[item.return_number])
        answer = oc_api.parse_return_orders_response(
            (await oc.call("GET", oc_api.RETURN_ORDERS_PATH, params=query.to_query())).content
        )
        assert answer.result is not None
        [found] = answer.result.return_order_list
        assert (found.raw_status(), found.occurred_at()) == (item.raw_status(), item.occurred_at())
        assert found.tracking_number == item.tracking_number
        if item.raw_status() == "RESTOCKED":
            restocked += 1
            ids = [line.mf_sku_id for line in item.item_list if line.mf_sku_id]
            body = {"data": {"serviceType": "SKU", "uniqueIdList": ids}}
            stock = oc_api.parse_return_stock_response(
                (await oc.call("POST", oc_api.RETURN_STOCK_PATH, body)).content
            )
            assert stock.result is not None
            assert stock.result.failed_list == []
            warehouses = {row.warehouse_code for row in stock.result.inventory_list}
            assert item.warehouse_code in warehouses
    assert restocked > 0


async def test_callbacks_and_query_v2_speak_oc_s_statuses(oc: OcClient) -> None:
    for status in ORDER_STATUSES:
        [callback] = await _next(oc, 1, "outbound", status=status.upper().replace(" ", "_"))
        item = parse_callback("outbound", callback.body).data[0]
        assert isinstance(item, OcOutboundOrder)
        assert item.raw_status() == status
        query = {"data": {"orderNumberList": [{"orderNumber": item.order_number}]}}
        answer = oc_api.parse_outbound_query_response(
            (await oc.call("POST", oc_api.OUTBOUND_QUERY_PATH, query)).content
        )
        assert answer.data is not None
        [order] = answer.data
        assert order.raw_status() == status
        assert order.normalized_status() == OC_ORDER_STATUSES[status] != "unknown"
    for bad in ({"status": "SHIPPED"}, {"status": "Packed", "kind": "return"}):
        response = await oc.http.post(oc.base + "/_sim/callbacks/next", params=bad)
        assert response.status_code == 400
        assert "status" in response.json()["error"]

"""The simulator's business endpoints over a real socket: headers, answers, OC's limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.simulator.app import create_app, simulator_of
from gateway.simulator.state import SimulatorConfig
from schemas import oc_api
from schemas.tolerant import format_oc_datetime, parse_oc_datetime
from tests.schemas.oc_examples import RETURN_STOCK_REQUEST_DOC, RETURN_STOCK_RESPONSE
from tests.simulation import serving

from .conftest import CLIENT_KEY, SECRET_KEY, OcClient, RunningSimulator


def _t(moment: datetime) -> str:
    return format_oc_datetime(moment)


NOW = datetime.now(UTC)  # only for windows whose size matters, not their position


# --- signature and token -------------------------------------------------------------------
async def test_a_signed_call_with_a_token_is_answered(oc: OcClient) -> None:
    response = await oc.call("POST", oc_api.STOCK_SNAPSHOT_PATH, {"data": {"pageSize": 5}})
    assert response.status_code == 200
    answer = oc_api.parse_stock_snapshot_response(response.content)
    assert not answer.is_failure()
    assert answer.data is not None
    assert len(answer.data.sku_list) == 5


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sign": False}, "clientKey and vAuthorization headers are required"),
        ({"secret": "wrong-secret"}, "vAuthorization signature verification failed"),
    ],
)
async def test_signature_failures_come_back_as_success_false(
    oc: OcClient, changes: dict[str, Any], message: str
) -> None:
    response = await oc.call("POST", oc_api.STOCK_SNAPSHOT_PATH, {"data": {}}, **changes)
    assert response.status_code == 200
    answer = oc_api.parse_stock_snapshot_response(response.content)
    assert answer.is_failure()
    assert answer.is_signature_failure()
    assert not answer.is_auth_failure()
    assert answer.message == message


async def test_a_signature_over_other_bytes_fails(oc: OcClient) -> None:
    signed = await oc.call("POST", oc_api.STOCK_SNAPSHOT_PATH, {"data": {}})
    request = signed.request
    headers = {k: v for k, v in request.headers.items() if k != "content-length"}
    tampered = await oc.http.post(
        str(request.url), content=b'{"data":{"pageSize":1}}', headers=headers
    )
    assert oc_api.parse_stock_snapshot_response(tampered.content).is_signature_failure()


@pytest.mark.parametrize("token", [None, "not-a-token"])
async def test_missing_or_unknown_tokens_are_auth_failures(oc: OcClient, token: str | None) -> None:
    response = await oc.call("POST", oc_api.STOCK_SNAPSHOT_PATH, {"data": {}}, token=token)
    answer = oc_api.parse_stock_snapshot_response(response.content)
    assert answer.is_auth_failure()


async def test_a_token_without_bearer_is_refused(oc: OcClient) -> None:
    response = await oc.call("POST", oc_api.STOCK_SNAPSHOT_PATH, {"data": {}}, token=False)
    headers = {k: v for k, v in response.request.headers.items() if k != "content-length"}
    headers["Access-Token"] = oc.token or ""
    retry = await oc.http.post(
        str(response.request.url), content=response.request.content, headers=headers
    )
    assert oc_api.parse_classic_response(retry.content).is_auth_failure()


async def test_service_list_needs_no_token(oc: OcClient) -> None:
    response = await oc.call("GET", oc_api.SERVICE_LIST_PATH, token=False)
    answer = oc_api.parse_classic_response(response.content)
    assert not answer.is_failure()
    assert {entry["serviceRegion"] for entry in answer.data or []} >= {"UK", "DE", "US-West"}


async def test_return_calls_accept_unsigned_requests_but_check_sent_signatures(
    oc: OcClient,
) -> None:
    body = {"data": {"serviceType": "SKU", "uniqueIdList": ["x"]}}
    unsigned = await oc.call("POST", oc_api.RETURN_STOCK_PATH, body, sign=False)
    assert not oc_api.parse_return_stock_response(unsigned.content).is_failure()
    forged = await oc.call("POST", oc_api.RETURN_STOCK_PATH, body, secret="forged")
    answer = oc_api.parse_return2_response(forged.content)
    assert answer.is_failure()
    assert answer.is_signature_failure()


# --- classic look-ups and their limits ------------------------------------------------------
async def test_outbound_query_by_number_and_by_window(
    oc: OcClient, simulator: RunningSimulator
) -> None:
    numbers = sorted(simulator.sim.world.orders)[:3]
    by_number = {"data": {"orderNumberList": [{"orderNumber": n} for n in numbers]}}
    answer = oc_api.parse_outbound_query_response(
        (await oc.call("POST", oc_api.OUTBOUND_QUERY_PATH, by_number)).content
    )
    assert answer.data is not None
    assert sorted(o.order_number for o in answer.data) == numbers
    assert all(o.raw_status() and o.tracking_number_list is not None for o in answer.data)
    now = datetime.now(UTC)
    window = {"data": {"startTime": _t(now - timedelta(days=4)), "endTime": _t(now)}}
    answer = oc_api.parse_outbound_query_response(
        (await oc.call("POST", oc_api.OUTBOUND_QUERY_PATH, window)).content
    )
    assert answer.data is not None
    assert len(answer.data) >= 150
    assert simulator.sim.stats.count("outbound_query_v2", "ok") == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"startTime": _t(NOW - timedelta(days=8)), "endTime": _t(NOW)},
            "cannot exceed 7 days",
        ),
        ({"orderNumberList": [{"orderNumber": f"OCO{i}"} for i in range(1001)]}, "1000"),
        ({}, "is required"),
        ({"startTime": "yesterday-ish"}, "Request parameter error"),
    ],
)
async def test_outbound_query_limits(oc: OcClient, data: dict[str, Any], message: str) -> None:
    response = await oc.call("POST", oc_api.OUTBOUND_QUERY_PATH, {"data": data})
    assert response.status_code == 200
    answer = oc_api.parse_outbound_query_response(response.content)
    assert answer.is_failure()
    assert answer.code == 3
    assert message in (answer.message or "")


async def test_outbound_query_refuses_more_than_1000_results() -> None:
    config = SimulatorConfig(seed=9, client_key=CLIENT_KEY, secret_key=SECRET_KEY)
    app = create_app(config)
    simulator_of(app).next_callbacks(5000, "outbound")
    async with serving(app) as url, httpx.AsyncClient() as http:
        client = OcClient(http, url)
        await client.fetch_token()
        now = datetime.now(UTC)
        window = {"startTime": _t(now - timedelta(days=6)), "endTime": _t(now + timedelta(hours=1))}
        answer = oc_api.parse_outbound_query_response(
            (await client.call("POST", oc_api.OUTBOUND_QUERY_PATH, {"data": window})).content
        )
    assert answer.is_failure()
    assert "more than 1000" in (answer.message or "")


async def test_stock_snapshot_pages_and_filters(oc: OcClient, simulator: RunningSimulator) -> None:
    skus = sorted(simulator.sim.world.skus)[:10]
    body = {"data": {"skuList": [{"mfSkuId": s} for s in skus], "pageSize": 200}}
    answer = oc_api.parse_stock_snapshot_response(
        (await oc.call("POST", oc_api.STOCK_SNAPSHOT_PATH, body)).content
    )
    assert answer.data is not None
    rows = answer.data.sku_list
    assert {r.mf_sku_id for r in rows} <= set(skus)
    assert len(rows) == len(simulator.sim.world.stock_rows(skus))
    body = {"data": {"skuList": [], "serviceRegionList": [{"serviceRegion": "UK"}], "pageSize": 7}}
    page = oc_api.parse_stock_snapshot_response(
        (await oc.call("POST", oc_api.STOCK_SNAPSHOT_PATH, body)).content
    )
    assert page.data is not None
    assert [r.service_region for r in page.data.sku_list] == ["UK"] * 7
    assert simulator.sim.stats.snapshot()["endpoints"]["stock_snapshot_v2"]["skus"] == 10


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"pageSize": 201}, "pageSize"),
        ({"pageSize": 0}, "pageSize"),
        ({"skuList": [{"mfSkuId": f"OC{i}"} for i in range(201)]}, "200 SKUs"),
    ],
)
async def test_stock_snapshot_limits(oc: OcClient, data: dict[str, Any], message: str) -> None:
    answer = oc_api.parse_stock_snapshot_response(
        (await oc.call("POST", oc_api.STOCK_SNAPSHOT_PATH, {"data": data})).content
    )
    assert answer.is_failure()
    assert message in (answer.message or "")


async def test_stock_movement_returns_the_ledger(oc: OcClient, simulator: RunningSimulator) -> None:
    now = datetime.now(UTC)
    window = {"startTime": _t(now - timedelta(days=6)), "endTime": _t(now + timedelta(minutes=1))}
    answer = oc_api.parse_stock_movement_response(
        (await oc.call("POST", oc_api.STOCK_MOVEMENT_PATH, {"data": window})).content
    )
    assert answer.data
    lines = [
        line
        for sku in answer.data
        for region in sku.service_region_list
        for bucket in region.inventory_list
        for line in bucket.movement_list
    ]
    assert {line.reason_code() for line in lines} >= {"ALC", "OEH"}
    one_sku = answer.data[0].mf_sku_id
    filtered = oc_api.parse_stock_movement_response(
        (
            await oc.call(
                "POST",
                oc_api.STOCK_MOVEMENT_PATH,
                {"data": {**window, "mfSkuList": [{"mfSkuId": one_sku}]}},
            )
        ).content
    )
    assert [s.mf_sku_id for s in filtered.data or []] == [one_sku]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"startTime": _t(NOW - timedelta(days=8)), "endTime": _t(NOW)}, "cannot exceed 7 days"),
        (
            {
                "startTime": _t(NOW - timedelta(days=400)),
                "endTime": _t(NOW - timedelta(days=397)),
            },
            "only valid for the last 12 months",
        ),
        ({"startTime": _t(NOW), "endTime": _t(NOW - timedelta(days=1))}, "before startTime"),
    ],
)
async def test_stock_movement_limits(oc: OcClient, data: dict[str, Any], message: str) -> None:
    answer = oc_api.parse_stock_movement_response(
        (await oc.call("POST", oc_api.STOCK_MOVEMENT_PATH, {"data": data})).content
    )
    assert answer.is_failure()
    assert message in (answer.message or "")


# --- Return 2.0 ---------------------------------------------------------------------------
async def test_return_orders_by_number_and_by_order(
    oc: OcClient, simulator: RunningSimulator
) -> None:
    returns = sorted(simulator.sim.world.returns.values(), key=lambda r: r.return_number)[:2]
    query = oc_api.ReturnOrderQuery(return_numbers=[r.return_number for r in returns])
    answer = oc_api.parse_return_orders_response(
        (await oc.call("GET", oc_api.RETURN_ORDERS_PATH, params=query.to_query())).content
    )
    assert answer.result is not None
    found = answer.result.return_order_list
    assert [r.return_number for r in found] == [r.return_number for r in returns]
    assert found[0].original_order_number == returns[0].order_number
    by_order = oc_api.ReturnOrderQuery(order_number=returns[0].order_number)
    answer = oc_api.parse_return_orders_response(
        (await oc.call("GET", oc_api.RETURN_ORDERS_PATH, params=by_order.to_query())).content
    )
    assert answer.result is not None
    assert returns[0].return_number in {r.return_number for r in answer.result.return_order_list}
    empty = await oc.call("GET", oc_api.RETURN_ORDERS_PATH, params={"pageSize": 5})
    assert oc_api.parse_return_orders_response(empty.content).is_failure()


async def test_return_stock_answers_the_documented_shape(
    oc: OcClient, simulator: RunningSimulator
) -> None:
    await oc.http.post(oc.base + "/_sim/callbacks/next", params={"count": 300, "kind": "return"})
    world = simulator.sim.world
    stocked = sorted({sku for sku, _ in world.return_stock})[:2]
    seller = world.skus[stocked[1]].seller_sku_id
    ids = [stocked[0], seller, "asdfg12345"]
    body = {"messageId": "m-4", "data": {"serviceType": "SKU", "uniqueIdList": ids}}
    response = await oc.call("POST", oc_api.RETURN_STOCK_PATH, body)
    answer = oc_api.parse_return_stock_response(response.content)
    assert not answer.is_failure()
    assert answer.result is not None
    page = answer.result
    assert (page.request_count, page.success_count, page.failed_count) == (3, 2, 1)
    assert page.failed_list == ["asdfg12345"]
    assert {row.unique_id for row in page.inventory_list} == {stocked[0], seller}
    assert all(row.warehouse_code and row.length_unit == "cm" for row in page.inventory_list)
    assert response.json()["requestId"].startswith("sim-req-")


async def test_return_stock_answers_oc_s_documented_example_as_oc_would(
    oc: OcClient, simulator: RunningSimulator
) -> None:
    request = json.loads(RETURN_STOCK_REQUEST_DOC)
    response = await oc.call("POST", oc_api.RETURN_STOCK_PATH, request)
    answer = oc_api.parse_return_stock_response(response.content)
    assert not answer.is_failure()
    page = answer.result
    assert page is not None
    assert (page.page_number, page.page_size, page.has_next_page, page.total_page) == (
        1,
        20,
        False,
        1,
    )
    assert page.service_type == "SKU"
    assert (page.request_count, page.success_count, page.failed_count) == (6, 5, 1)
    assert page.failed_list == ["asdfg12345"]  # the odd one out
    assert (page.success_count or 0) + (page.failed_count or 0) == page.request_count
    asked = request["data"]["uniqueIdList"]
    assert [row.unique_id for row in page.inventory_list] == asked[:5]

    documented = json.loads(RETURN_STOCK_RESPONSE)["result"]
    [example] = documented["inventoryList"]
    rows = {row["uniqueId"]: row for row in response.json()["result"]["inventoryList"]}
    for row in rows.values():  # every field of the page's response, none left empty
        assert row.keys() == example.keys()
        assert None not in row.values()
        assert row["mfSkuId"] in simulator.sim.world.skus
        put_away = parse_oc_datetime(row["putAwayTime"])
        assert put_away < simulator.sim.world.epoch
    assert {k: v for k, v in rows["DE01UC001"].items() if k != "putAwayTime"} == {
        k: v for k, v in example.items() if k != "putAwayTime"
    }
    assert response.json()["result"].keys() == documented.keys()


async def test_return_stock_pages_the_documented_example(oc: OcClient) -> None:
    ids = json.loads(RETURN_STOCK_REQUEST_DOC)["data"]["uniqueIdList"]
    seen: list[str] = []
    for number in (1, 2, 3):
        body = {
            "data": {"serviceType": "SKU", "uniqueIdList": ids, "pageNumber": number, "pageSize": 2}
        }
        answer = oc_api.parse_return_stock_response(
            (await oc.call("POST", oc_api.RETURN_STOCK_PATH, body)).content
        )
        assert answer.result is not None
        result = answer.result
        assert (result.total_page, result.has_next_page) == (3, number < 3)
        assert (result.request_count, result.success_count, result.failed_count) == (6, 5, 1)
        seen += [row.unique_id or "" for row in result.inventory_list]
    assert seen == ids[:5]


async def test_return_stock_limits(oc: OcClient) -> None:
    too_many = {"data": {"uniqueIdList": [f"id{i}" for i in range(201)]}}
    answer = oc_api.parse_return_stock_response(
        (await oc.call("POST", oc_api.RETURN_STOCK_PATH, too_many)).content
    )
    assert answer.is_failure()
    assert answer.has_business_exception is True
    odd_type = {"data": {"serviceType": "ORDER", "uniqueIdList": ["x"]}}
    answer = oc_api.parse_return_stock_response(
        (await oc.call("POST", oc_api.RETURN_STOCK_PATH, odd_type)).content
    )
    assert answer.is_failure()


async def test_label_and_cancel_and_tracking_update(
    oc: OcClient, simulator: RunningSimulator
) -> None:
    world = simulator.sim.world
    await oc.http.post(oc.base + "/_sim/callbacks/next", params={"count": 20, "kind": "return"})
    fresh = next(r for r in world.returns.values() if r.status == "CREATED")
    label = oc_api.parse_return_label_response(
        (
            await oc.call(
                "GET", oc_api.RETURN_LABEL_PATH, params={"returnNumber": fresh.return_number}
            )
        ).content
    )
    assert label.result is not None
    assert label.result.label_format == "PDF"
    assert (label.result.label_data or "").startswith("JVBERi0")  # base64 of "%PDF-"
    update = {"data": {"orderNumber": fresh.return_number, "trackingNumber": "TRK-9"}}
    answer = oc_api.parse_cancel_rma_response(
        (await oc.call("POST", oc_api.RETURN_CANCEL_RMA_PATH, update)).content
    )
    assert not answer.is_failure()
    assert world.returns[fresh.return_number].tracking_number == "TRK-9"
    cancel = {"data": {"orderNumber": fresh.return_number, "cancelReason": "buyer kept it"}}
    answer = oc_api.parse_cancel_rma_response(
        (await oc.call("POST", oc_api.RETURN_CANCEL_RMA_PATH, cancel)).content
    )
    assert answer.result is not None
    assert answer.result.status == "CANCELLED"
    again = oc_api.parse_cancel_rma_response(
        (await oc.call("POST", oc_api.RETURN_CANCEL_RMA_PATH, cancel)).content
    )
    assert again.is_failure()
    missing = await oc.call("GET", oc_api.RETURN_LABEL_PATH, params={"returnNumber": "nope"})
    assert oc_api.parse_return_label_response(missing.content).is_failure()

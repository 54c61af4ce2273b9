"""OC API models: every documented example round-trips; failures in HTTP 200 are recognised."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel

from schemas import oc_api
from schemas.oc_api import (
    CancelRmaData,
    CancelRmaRequest,
    OcResponse,
    OutboundQuery,
    OutboundQueryRequest,
    Return2Response,
    ReturnLabelQuery,
    ReturnOrderQuery,
    ReturnStockQuery,
    ReturnStockRequest,
    SkuRef,
    StockMovementRequest,
    StockSnapshotQuery,
    StockSnapshotRequest,
    TokenRequest,
    TokenResponse,
)
from schemas.tolerant import TolerantModel

from . import oc_examples as ex

CST = timezone(timedelta(hours=8))

ROUND_TRIPS: list[tuple[str, str, Callable[[bytes], TolerantModel]]] = [
    ("token", ex.TOKEN_RESPONSE, oc_api.parse_token_response),
    ("classic error", ex.CLASSIC_ERROR, oc_api.parse_classic_response),
    ("callback answer", ex.CALLBACK_ANSWER, oc_api.parse_classic_response),
    ("outbound query", ex.OUTBOUND_QUERY_RESPONSE, oc_api.parse_outbound_query_response),
    ("stock snapshot", ex.STOCK_SNAPSHOT_RESPONSE, oc_api.parse_stock_snapshot_response),
    ("stock movement", ex.STOCK_MOVEMENT_RESPONSE, oc_api.parse_stock_movement_response),
    ("movement error", ex.STOCK_MOVEMENT_ERROR, oc_api.parse_stock_movement_response),
    ("return stock", ex.RETURN_STOCK_RESPONSE, oc_api.parse_return_stock_response),
]
REQUESTS: list[tuple[str, str, type[BaseModel]]] = [
    ("outbound query", ex.OUTBOUND_QUERY_REQUEST, OutboundQueryRequest),
    ("outbound query (doc)", ex.OUTBOUND_QUERY_REQUEST_DOC, OutboundQueryRequest),
    ("stock snapshot", ex.STOCK_SNAPSHOT_REQUEST, StockSnapshotRequest),
    ("stock movement", ex.STOCK_MOVEMENT_REQUEST, StockMovementRequest),
    ("return stock", ex.RETURN_STOCK_REQUEST, ReturnStockRequest),
    ("return stock (doc)", ex.RETURN_STOCK_REQUEST_DOC, ReturnStockRequest),
    ("cancel rma", ex.CANCEL_RMA_REQUEST, CancelRmaRequest),
]


@pytest.mark.parametrize(("name", "text", "parse"), ROUND_TRIPS, ids=[r[0] for r in ROUND_TRIPS])
def test_documented_responses_round_trip(
    name: str, text: str, parse: Callable[[bytes], TolerantModel]
) -> None:
    parsed = parse(text.encode())
    assert json.loads(parsed.to_oc_json()) == json.loads(text), name


@pytest.mark.parametrize(("name", "text", "model"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_documented_requests_round_trip(name: str, text: str, model: type[BaseModel]) -> None:
    parsed = model.model_validate_json(text)
    assert isinstance(parsed, TolerantModel)
    assert json.loads(parsed.to_oc_json()) == json.loads(text), name


def test_outbound_query_response_fields() -> None:
    answer = oc_api.parse_outbound_query_response(ex.OUTBOUND_QUERY_RESPONSE.encode())
    assert not answer.is_failure()
    assert answer.data is not None
    order = answer.data[0]
    assert order.auto_fulfillment_ef is False
    assert order.order_creation_time == datetime(2022, 5, 17, 16, 0, 16, tzinfo=CST)
    assert order.tracking_number_list[0].chargeable_weight is not None
    assert str(order.tracking_number_list[0].chargeable_weight) == "11000.0000"


def test_stock_snapshot_and_movement_fields() -> None:
    snapshot = oc_api.parse_stock_snapshot_response(ex.STOCK_SNAPSHOT_RESPONSE.encode())
    assert snapshot.data is not None
    row = snapshot.data.sku_list[0]
    assert (row.mf_sku_id, row.location(), row.available, row.reserved_vas) == (
        "OC0000000675549",
        "UK",
        40,
        0,
    )
    movement = oc_api.parse_stock_movement_response(ex.STOCK_MOVEMENT_RESPONSE.encode())
    assert movement.data is not None
    line = movement.data[0].service_region_list[0].inventory_list[0].movement_list[0]
    assert (line.movement_id, line.quantity, line.reason_code()) == ("m1", -20, "OEH")
    assert line.update_time == datetime(2024, 7, 15, 19, 48, 37, tzinfo=CST)
    spelled_right = oc_api.StockMovement.model_validate({"movementID": "m2", "reason": "PAC=Put"})
    assert (spelled_right.movement_id, spelled_right.reason_code()) == ("m2", "PAC")


def test_return_stock_fields() -> None:
    answer = oc_api.parse_return_stock_response(ex.RETURN_STOCK_RESPONSE.encode())
    assert not answer.is_failure()
    assert answer.result is not None
    page = answer.result
    assert (page.request_count, page.success_count, page.failed_list) == (6, 5, ["asdfg12345"])
    row = page.inventory_list[0]
    assert (row.unique_id, row.warehouse_code, row.available, row.reserved_vas) == (
        "DE01UC001",
        "DE01",
        3,
        0,
    )
    assert row.put_away_time == datetime(2026, 6, 10, 1, 30, tzinfo=UTC)


def test_requests_serialise_in_oc_spelling() -> None:
    request = OutboundQueryRequest(
        message_id="m-1",
        timestamp=1588233847001,
        data=OutboundQuery(
            start_time=datetime(2023, 4, 21, 20, 9, 57, tzinfo=CST),
            end_time=datetime(2023, 4, 25, 12, 9, 57, tzinfo=UTC),
        ),
    )
    body = json.loads(request.to_request_json())
    assert body["data"]["startTime"] == "2023-04-21T20:09:57+0800"
    assert body["data"]["endTime"] == "2023-04-25T12:09:57+0000"
    assert body["data"]["orderNumberList"] == []
    by_number = OutboundQuery.for_orders(["OCO1", "OCO2"]).to_request_json()
    assert json.loads(by_number)["orderNumberList"] == [
        {"orderNumber": "OCO1"},
        {"orderNumber": "OCO2"},
    ]
    snapshot = StockSnapshotRequest(data=StockSnapshotQuery(sku_list=[SkuRef(mf_sku_id="OC1")]))
    assert json.loads(snapshot.to_request_json())["data"] == {
        "pageNumber": 1,
        "pageSize": oc_api.STOCK_SNAPSHOT_MAX_PAGE_SIZE,
        "skuList": [{"mfSkuId": "OC1"}],
        "serviceRegionList": [],
    }


def test_sloppy_requests_are_read() -> None:
    request = StockSnapshotRequest.model_validate_json(
        b'{"timeStamp":"123456789","data":{"SKUList":["OC1",{"MFSKUID":"OC2"}],'
        b'"pagesize":"50","serviceRegionList":null}}'
    )
    assert request.timestamp == 123456789
    assert [s.mf_sku_id for s in request.data.sku_list] == ["OC1", "OC2"]
    assert request.data.page_size == 50
    assert request.data.service_region_list == []


def test_token_requests_put_everything_in_the_query() -> None:
    exchange = TokenRequest.authorization_code("client", "the code", "https://x/cb")
    assert exchange.to_query() == {
        "client_id": "client",
        "grant_type": "authorization_code",
        "redirect_uri": "https://x/cb",
        "code": "the code",
    }
    assert TokenRequest.refresh("client", "rt").to_query() == {
        "client_id": "client",
        "grant_type": "refresh_token",
        "refresh_token": "rt",
    }


def test_token_responses_success_error_and_wrapped() -> None:
    ok = oc_api.parse_token_response(ex.TOKEN_RESPONSE)
    assert not ok.is_failure()
    assert (ok.access_token, ok.expires_in, ok.refresh_token) == ("at-sim-001", 3600, "rt-sim-001")
    refused = oc_api.parse_token_response(
        b'{"error":"invalid_grant","error_description":"refresh token expired"}'
    )
    assert refused.is_failure()
    assert refused.is_auth_failure()
    wrapped = TokenResponse.model_validate(
        {"code": 0, "success": True, "data": {"access_token": "a", "expires_in": "3600"}}
    )
    assert (wrapped.access_token, wrapped.expires_in) == ("a", 3600)
    assert not wrapped.is_failure()


CLASSIC_FAILURES: list[tuple[dict[str, Any], bool]] = [
    ({"code": 3, "success": False, "errors": [{"code": "3A0529", "message": "Query fail"}]}, False),
    ({"code": 401, "success": False, "message": "Access token is invalid or expired"}, True),
    ({"success": False, "message": "Invalid access_token"}, True),
    ({"success": False, "errors": [{"code": "TOKEN_EXPIRED", "message": "x"}]}, True),
    ({"success": False, "message": "认证失败: 令牌已过期"}, True),
    ({"success": False, "message": "Unauthorized"}, True),
    ({"code": "1001", "message": "authentication failed"}, True),
]


@pytest.mark.parametrize(("body", "auth"), CLASSIC_FAILURES)
def test_classic_failures_in_http_200_are_recognised(body: dict[str, Any], auth: bool) -> None:
    answer = oc_api.parse_outbound_query_response(json.dumps(body).encode())
    assert answer.is_failure()
    assert answer.is_auth_failure() is auth
    assert answer.error_summary() != ""


def test_classic_success_shapes_are_not_failures() -> None:
    for body in ({"code": 0, "success": True}, {"code": "0"}, {"success": True, "code": 3}, {}):
        answer = OcResponse[Any].model_validate(body)
        assert not answer.is_failure(), body
        assert not answer.is_auth_failure()


def test_a_failed_answer_with_an_odd_payload_still_parses() -> None:
    answer = oc_api.parse_stock_snapshot_response(
        b'{"code":5,"success":false,"message":"System busy","data":"n/a"}'
    )
    assert answer.is_failure()
    assert answer.data is None
    with pytest.raises(ValueError, match="data"):
        oc_api.parse_stock_snapshot_response(b'{"code":0,"success":true,"data":"n/a"}')


def test_signature_and_rate_limit_failures_are_told_apart() -> None:
    signature = OcResponse[Any].model_validate(
        {"success": False, "message": "vAuthorization signature verification failed"}
    )
    assert signature.is_signature_failure()
    assert not signature.is_auth_failure()
    busy = OcResponse[Any].model_validate({"success": False, "message": "Too many requests"})
    assert busy.is_rate_limited()
    assert not busy.is_signature_failure()


RETURN2_FAILURES: list[tuple[dict[str, Any], bool]] = [
    ({"success": False, "errorMsg": "not found"}, False),
    ({"success": True, "hasBusinessException": True, "errorMsg": "bad id"}, False),
    ({"success": True, "errorCode": "R-1001"}, False),
    ({"success": False, "errorCode": "401", "errorMsg": "token expired"}, True),
    ({"success": False, "message": "Access-Token invalid"}, True),
]


@pytest.mark.parametrize(("body", "auth"), RETURN2_FAILURES)
def test_return2_failures_are_recognised(body: dict[str, Any], auth: bool) -> None:
    answer = oc_api.parse_return_stock_response(json.dumps(body).encode())
    assert answer.is_failure()
    assert answer.is_auth_failure() is auth


def test_return2_success_is_not_a_failure_even_as_fallback() -> None:
    answer = Return2Response[Any].model_validate(
        {"success": True, "hasBusinessException": False, "errorCode": "", "isFallback": True}
    )
    assert not answer.is_failure()
    assert answer.is_fallback is True


def test_return_order_query_and_page_are_inferred_but_tolerant() -> None:
    query = ReturnOrderQuery.model_validate({"returnNumber": ["R1", "R2,R3"], "pageSize": "10"})
    assert query.return_numbers == ["R1", "R2", "R3"]
    assert query.to_query() == [
        ("returnNumber", "R1"),
        ("returnNumber", "R2"),
        ("returnNumber", "R3"),
        ("pageNumber", "1"),
        ("pageSize", "10"),
    ]
    answer = oc_api.parse_return_orders_response(
        b'{"success":true,"result":{"pageNumber":1,"hasNextPage":false,'
        b'"records":[{"returnNumber":"R1","status":"RECEIVED","orderNumber":"OCO1"}]}}'
    )
    assert answer.result is not None
    order = answer.result.return_order_list[0]
    assert (order.return_number, order.original_order_number) == ("R1", "OCO1")
    assert order.normalized_status() == "received"


def test_label_and_cancel_models() -> None:
    assert ReturnLabelQuery(return_number="R1").to_query() == [("returnNumber", "R1")]
    label = oc_api.parse_return_label_response(
        b'{"success":true,"result":{"returnNumber":"R1","labelFormat":"PDF","labelData":"JVBE"}}'
    )
    assert label.result is not None
    assert label.result.label_format == "PDF"
    assert not CancelRmaData(order_number="R1").is_tracking_update()
    assert CancelRmaData(order_number="R1", tracking_number="T1").is_tracking_update()
    assert CancelRmaData(order_number="R1", operation_type="UPDATE_TRACKING").is_tracking_update()
    cancelled = oc_api.parse_cancel_rma_response(b'{"success":true,"result":null}')
    assert not cancelled.is_failure()


def test_return_stock_request_defaults() -> None:
    body = json.loads(
        ReturnStockRequest(data=ReturnStockQuery(unique_id_list=["A"])).to_request_json()
    )
    assert body == {
        "data": {"serviceType": "SKU", "uniqueIdList": ["A"], "pageNumber": 1, "pageSize": 20}
    }


def test_limits_are_published_as_constants() -> None:
    assert oc_api.STOCK_SNAPSHOT_MAX_PAGE_SIZE == 200
    assert oc_api.OUTBOUND_QUERY_MAX_RESULTS == 1000
    assert timedelta(days=7) == oc_api.STOCK_MOVEMENT_MAX_WINDOW
    assert timedelta(days=365) == oc_api.STOCK_MOVEMENT_MAX_AGE
    assert oc_api.ACCESS_TOKEN_TTL_S == 3600

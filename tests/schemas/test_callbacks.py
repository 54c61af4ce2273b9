"""Inbound callbacks: OC's example, the tolerated variants, entity keys and event times."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.callbacks import (
    CALLBACK_KINDS,
    CONSIGNEE_FIELDS,
    InventoryCallback,
    OutboundCallback,
    ReturnCallback,
    normalize_order_status,
    parse_callback,
    parse_inventory_callback,
    parse_outbound_callback,
    parse_return_callback,
)

from .oc_examples import OUTBOUND_CALLBACK, OUTBOUND_QUERY_RESPONSE

SAMPLE = Path(__file__).resolve().parents[2] / "tools" / "sample-callback.json"
CST = timezone(timedelta(hours=8))


def test_the_inferred_outbound_callback_round_trips() -> None:
    callback = parse_outbound_callback(OUTBOUND_CALLBACK.encode())
    assert json.loads(callback.to_oc_json()) == json.loads(OUTBOUND_CALLBACK)
    order = callback.data[0]
    assert order.order_number == "OCO0000011225074GB"
    assert order.order_creation_time == datetime(2022, 5, 17, 16, 0, 16, tzinfo=CST)
    entry = order.tracking_number_list[0]
    assert entry.lm_carrier_code == "XDP"
    assert [(s.mf_sku_id, s.sku_quantity, s.serial_numbers()) for s in order.sku_lines()] == [
        ("OC0000000675549", 2, ["A01", "A02"])
    ]
    assert callback.entities() == [("OCO0000011225074GB", [order])]
    assert callback.occurred_at(order) == datetime(2024, 6, 17, 4, 53, 20, tzinfo=UTC)


def test_the_repository_sample_parses_with_its_status() -> None:
    callback = parse_outbound_callback(SAMPLE.read_bytes())
    order = callback.data[0]
    assert order.raw_status() == "In-delivery"
    assert order.normalized_status() == "shipped"
    assert json.loads(callback.to_oc_json()) == json.loads(SAMPLE.read_bytes())


def test_key_case_variants_and_a_single_data_object_are_accepted() -> None:
    variant = {
        "MessageID": "m-1",
        "timeStamp": "1718600000000",
        "Data": {
            "ordernumber": "OCO1",
            "OrderStatus": "Outbound_Shipped",
            "tracking_number_list": [
                {
                    "lmCarrierCode": "DPD",
                    "skuList": [{"mfSkuId": "OC9", "skuQuantity": "3", "sn": "X1"}],
                }
            ],
            "statusTime": "2024-06-17T12:00:00+08:00",
            "somethingNew": [1, 2],
        },
    }
    callback = parse_outbound_callback(json.dumps(variant).encode())
    order = callback.data[0]
    assert callback.message_id == "m-1"
    assert callback.timestamp == 1718600000000
    assert order.order_number == "OCO1"
    assert order.normalized_status() == "shipped"
    assert order.tracking_number_list[0].lm_carrier_code == "DPD"
    assert order.sku_lines()[0].mf_sku_id == "OC9"
    assert order.sku_lines()[0].sku_quantity == 3
    assert order.extra_fields() == {"somethingNew": [1, 2]}
    assert callback.occurred_at(order) == datetime(2024, 6, 17, 4, 0, tzinfo=UTC)
    written = json.loads(callback.to_oc_json())
    assert written["data"][0]["orderStatus"] == "Outbound_Shipped"
    assert written["data"][0]["somethingNew"] == [1, 2]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("status", "SHIPPED"),
        ("orderStatus", "shipped"),
        ("outboundStatus", "OUTBOUND_SHIPPED"),
        ("shipmentStatus", "Dispatched"),
    ],
)
def test_status_is_found_under_several_keys(key: str, value: str) -> None:
    body = json.dumps({"data": [{"orderNumber": "OCO1", key: value}]}).encode()
    order = parse_outbound_callback(body).data[0]
    assert order.raw_status() == value
    assert order.normalized_status() == "shipped"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("statusTime", "2024-06-17T12:00:00+0800"),
        ("updateTime", "2024-06-17T04:00:00Z"),
        ("eventTime", 1718596800000),
        ("operateTime", "1718596800000"),
    ],
)
def test_event_time_is_found_under_several_keys(key: str, value: object) -> None:
    callback = parse_outbound_callback(
        json.dumps({"timestamp": 1, "data": [{"orderNumber": "OCO1", key: value}]}).encode()
    )
    assert callback.occurred_at(callback.data[0]) == datetime(2024, 6, 17, 4, 0, tzinfo=UTC)


def test_event_time_falls_back_to_the_envelope_timestamp() -> None:
    callback = parse_outbound_callback(b'{"timestamp":1718596800000,"data":[{"orderNumber":"A"}]}')
    assert callback.occurred_at(callback.data[0]) == datetime(2024, 6, 17, 4, 0, tzinfo=UTC)
    bare = parse_outbound_callback(b'{"data":[{"orderNumber":"A"}]}')
    assert bare.occurred_at(bare.data[0]) is None


def test_a_bare_item_or_list_without_envelope_is_accepted() -> None:
    assert parse_outbound_callback(b'{"orderNumber":"A","status":"PACKED"}').entities()[0][0] == "A"
    many = parse_outbound_callback(b'[{"orderNumber":"A"},{"orderNumber":"B"},{"orderNumber":"A"}]')
    assert [(key, len(items)) for key, items in many.entities()] == [("A", 2), ("B", 1)]


def test_consignee_fields_are_modelled_as_personal_data() -> None:
    item: dict[str, object] = {"orderNumber": "OCO1"}
    item.update({name: f"v-{name}" for name in CONSIGNEE_FIELDS})
    item["houseNumber"] = 12
    order = parse_outbound_callback(json.dumps({"data": [item]}).encode()).data[0]
    assert order.has_consignee()
    assert order.consignee_name == "v-consigneeName"
    assert order.house_number == "12"
    assert order.consignee_email == "v-consigneeEmail"
    assert order.extra_fields() == {}
    anonymous = parse_outbound_callback(b'{"data":[{"orderNumber":"OCO2"}]}').data[0]
    assert not anonymous.has_consignee()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"data":[]}',
        b'{"data":[{"referenceNumber":"no order number"}]}',
        b'{"data":[{"orderNumber":"A","trackingNumberList":[{"SKUList":[{"SKUQuantity":"x"}]}]}]}',
        b'{"data":[{"orderNumber":"A","statusTime":"whenever"}]}',
    ],
)
def test_unusable_outbound_bodies_fail_validation(body: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_outbound_callback(body)


RETURN_CALLBACK = {
    "messageId": "r-1",
    "timestamp": 1718600000000,
    "data": [
        {
            "returnNumber": "OCR1000000001DE",
            "orderNumber": "OCO1000000001DE",
            "status": "RECEIVED",
            "statusTime": "2024-06-17T12:00:00+0800",
            "warehouseCode": "DE01",
            "trackingNumber": "RT1",
            "carrierCode": "DHL",
            "itemList": [
                {"mfSkuId": "OC1", "sellerSkuId": "S1", "quantity": 1, "condition": "NEW"}
            ],
        }
    ],
}


def test_return_callback_round_trips_and_names_its_return() -> None:
    callback = parse_return_callback(json.dumps(RETURN_CALLBACK).encode())
    assert json.loads(callback.to_oc_json()) == RETURN_CALLBACK
    item = callback.data[0]
    assert callback.entities() == [("OCR1000000001DE", [item])]
    assert item.original_order_number == "OCO1000000001DE"
    assert item.normalized_status() == "received"
    assert item.item_list[0].condition == "NEW"
    assert item.warehouse_code == "DE01"


def test_return_callback_variants() -> None:
    body = {
        "data": {
            "RMANumber": "RMA-7",
            "returnStatus": "rma_in_transit",
            "LMCarrierCode": "UPS",
            "skuList": [{"MFSKUID": "OC1", "qty": "2", "grade": "B"}],
        }
    }
    item = parse_return_callback(json.dumps(body).encode()).data[0]
    assert item.return_number == "RMA-7"
    assert item.normalized_status() == "in_transit"
    assert item.carrier_code == "UPS"
    assert (item.item_list[0].mf_sku_id, item.item_list[0].quantity) == ("OC1", 2)
    assert item.item_list[0].condition == "B"


def test_a_return_named_only_by_order_number_is_keyed_by_it() -> None:
    callback = parse_return_callback(b'{"data":[{"orderNumber":"RMA-9","status":"CANCELLED"}]}')
    item = callback.data[0]
    assert callback.entities()[0][0] == "RMA-9"
    assert item.original_order_number is None


def test_a_return_without_any_number_is_rejected() -> None:
    with pytest.raises(ValidationError, match="return number"):
        parse_return_callback(b'{"data":[{"status":"RECEIVED"}]}')


def test_inventory_callback_is_keyed_by_sku_and_place() -> None:
    body = {
        "timestamp": 1718600000000,
        "data": [
            {"MFSKUID": "OC1", "serviceRegion": "UK", "available": 40, "reservedVAS": 0},
            {"mfSkuId": "OC1", "warehouseCode": "DE01", "available": "3", "reason": "PAC"},
        ],
    }
    callback = parse_inventory_callback(json.dumps(body).encode())
    assert [key for key, _ in callback.entities()] == ["OC1:UK", "OC1:DE01"]
    assert callback.data[1].available == 3
    assert callback.occurred_at(callback.data[0]) == datetime(2024, 6, 17, 4, 53, 20, tzinfo=UTC)


def test_an_inventory_item_without_a_place_is_rejected() -> None:
    with pytest.raises(ValidationError, match="serviceRegion or warehouseCode"):
        parse_inventory_callback(b'{"data":[{"MFSKUID":"OC1","available":1}]}')


def test_parse_callback_dispatches_on_kind() -> None:
    assert isinstance(parse_callback("outbound", OUTBOUND_CALLBACK), OutboundCallback)
    assert isinstance(parse_callback("return", json.dumps(RETURN_CALLBACK)), ReturnCallback)
    inventory = parse_callback("inventory", b'{"data":{"MFSKUID":"A","serviceRegion":"UK"}}')
    assert isinstance(inventory, InventoryCallback)
    assert CALLBACK_KINDS == ("outbound", "return", "inventory")
    with pytest.raises(ValueError, match="unknown callback kind"):
        parse_callback("refund", b"{}")  # type: ignore[arg-type]


def test_statuses_from_the_callbacks_helpers_are_the_shared_ones() -> None:
    assert normalize_order_status("Delivered") == "delivered"


def test_a_callback_wrapped_like_oc_s_query_v2_answer_parses_with_every_field() -> None:
    callback = parse_outbound_callback(OUTBOUND_QUERY_RESPONSE.encode())
    assert (callback.code, callback.success, callback.message_id) == (0, True, "m-1")
    assert json.loads(callback.to_oc_json()) == json.loads(OUTBOUND_QUERY_RESPONSE)
    order = callback.data[0]
    assert callback.entities() == [("OCO0000011225074GB", [order])]
    assert order.auto_fulfillment_ef is False
    entry = order.tracking_number_list[0]
    assert (entry.order_number, entry.lm_carrier_name, entry.chargeable_weight_unit) == (
        "OCO0000011225074GB",
        "XDP",
        "g",
    )
    assert entry.fee_amount_currency == "GBP"


@pytest.mark.parametrize(
    "wrapper",
    [
        {"code": 0, "success": True, "message": "成功"},
        {"code": "0", "success": "true", "message": "success", "errors": []},
        {"code": 0},
        {"success": True, "messageId": "m-9", "timestamp": 1718596800000},
    ],
)
def test_the_answer_wrapper_and_the_request_wrapper_mix(wrapper: dict[str, object]) -> None:
    order = {"orderNumber": "OCO1", "orderStatus": "In-delivery", "autoFulfillmentEF": 1}
    callback = parse_outbound_callback(json.dumps({**wrapper, "data": [order]}).encode())
    assert callback.entities()[0][0] == "OCO1"
    assert callback.data[0].normalized_status() == "shipped"
    assert callback.data[0].auto_fulfillment_ef is True  # 1 = created automatically
    assert callback.success is ("success" in wrapper or None)
    written = json.loads(callback.to_oc_json())
    assert written.keys() == {*wrapper, "data"}  # nothing dropped, nothing invented
    assert written["data"][0]["orderStatus"] == "In-delivery"

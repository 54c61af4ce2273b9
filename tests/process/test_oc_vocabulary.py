"""OC's own vocabulary through the whole gateway: every status value OC shows, in either of
OC's wrappers, becomes an event with a known status and every Query v2 field it has a
place for; an unknown value is published as `unknown`, never rejected, and counted under
OC's value."""

from __future__ import annotations

import json
from typing import Any

from schemas.events import OutboundOrderStatusChanged
from tests.conftest import SettingsFactory
from tests.helpers import TOKEN_PATH, read_topic, running_app, wait_for
from tests.schemas.oc_examples import ORDER_STATUS_VALUES

JSON = {"content-type": "application/json"}


def query_v2_order(order_number: str, status: str) -> dict[str, Any]:
    """An order with every field of OC's Outbound Order Query v2 answer (§6.2, §3.1)."""
    return {
        "orderNumber": order_number,
        "autoFulfillmentEF": True,
        "orderCreationTime": "2026-11-26T16:00:16+0800",
        "referenceNumber": f"REF-{order_number}",
        "serviceRegion": "UK",
        "orderStatus": status,
        "statusTime": "2026-11-27T10:00:00+0800",
        "trackingNumberList": [
            {
                "orderNumber": order_number,
                "trackingNumber": f"TRK{order_number[-4:]}",
                "LMCarrierCode": "XDP",
                "LMCarrierName": "XDP Express",
                "chargeableWeight": "11000.0000",
                "chargeableWeightUnit": "g",
                "feeAmount": 19,
                "feeAmountCurrency": "GBP",
                "SKUList": [{"MFSKUID": "OC0000000675549", "SKUQuantity": 2, "SN": "A01,A02"}],
            }
        ],
    }


def body(index: int, order: dict[str, Any]) -> bytes:
    """Odd callbacks in OC's answer wrapper, even ones in its request wrapper."""
    if index % 2:
        return json.dumps({"code": 0, "success": True, "message": "成功", "data": [order]}).encode()
    wrapped = {"messageId": f"m-{index}", "timestamp": 1795830000000, "data": [order]}
    return json.dumps(wrapped).encode()


async def test_every_oc_status_in_either_wrapper_becomes_a_known_status_with_its_fields(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings()
    sent = [*ORDER_STATUS_VALUES, ("Teleported", "unknown"), ("  ", "unknown")]
    orders = {f"OCO{i:013d}GB": (value, status) for i, (value, status) in enumerate(sent)}
    async with running_app(settings) as (client, gateway):
        for index, (number, (value, _)) in enumerate(orders.items()):
            answer = await client.post(
                f"{TOKEN_PATH}/outbound",
                content=body(index, query_v2_order(number, value)),
                headers=JSON,
            )
            assert answer.status_code == 200

        async def all_published() -> bool:
            return len(await read_topic(gateway, settings.topic_outbound)) == len(orders)

        await wait_for(all_published)
        records = await read_topic(gateway, settings.topic_outbound)
        quarantined = await read_topic(gateway, settings.topic_quarantine)
        metrics = gateway.metrics.registry
    assert quarantined == []
    events = {
        e.order_number: e
        for e in (OutboundOrderStatusChanged.model_validate_json(r.value) for r in records)
    }
    assert events.keys() == orders.keys()
    for number, (value, status) in orders.items():
        event = events[number]
        assert (event.status, event.oc_status) == (status, value.strip() or None), value
        [shipment] = event.shipments
        assert (shipment.carrier_code, shipment.carrier_name) == ("XDP", "XDP Express")
        assert (shipment.chargeable_weight_unit, shipment.fee_currency) == ("g", "GBP")
        assert shipment.order_number == number
        assert not event.status_regressed
    unknown = "gateway_unknown_status_values_total"
    for value in ("Teleported", "(none)"):
        assert metrics.get_sample_value(unknown, {"kind": "outbound", "value": value}) == 1
    assert metrics.get_sample_value("gateway_unknown_status_total", {"kind": "outbound"}) == 2

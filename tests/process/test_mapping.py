"""The pure mapping from OC's payloads to our events: ranks along OC's order of an order's
life, and which OC field feeds which event field."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise

from gateway.process import mapping
from schemas.callbacks import parse_outbound_callback
from schemas.events import Shipment, SkuLine
from schemas.oc_status import OC_ORDER_STATUSES
from tests.schemas.oc_examples import OUTBOUND_QUERY_RESPONSE

# OC's values in the order an order lives them (oc-api README §3.1); the rest are side exits.
OC_LIFE = [
    "Draft",
    "Submitted",
    "Accepted",
    "Create picking task",
    "Picked",
    "Packed",
    "Outbound",
    "In-delivery",
    "Delivered",
]


def test_the_rank_never_goes_down_along_oc_s_order_of_an_order_s_life() -> None:
    ranks = [mapping.ORDER_RANK[OC_ORDER_STATUSES[value]] for value in OC_LIFE]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == 6  # created, allocated, picking, packed, shipped, delivered
    for earlier, later in pairwise(OC_LIFE):
        status, previous = OC_ORDER_STATUSES[later], OC_ORDER_STATUSES[earlier]
        assert not mapping.behind(mapping.ORDER_RANK, previous, status), (earlier, later)
        assert not mapping.behind(mapping.ORDER_RANK, status, status)
    assert mapping.behind(mapping.ORDER_RANK, "shipped", OC_ORDER_STATUSES["Picked"])


def test_exceptions_can_come_at_any_point_of_the_life() -> None:
    for value in ("Exception", "Undeliverable return", "failed"):
        status = OC_ORDER_STATUSES[value]
        assert status not in mapping.ORDER_RANK
        for previous in OC_LIFE:
            assert not mapping.behind(mapping.ORDER_RANK, OC_ORDER_STATUSES[previous], status)
            assert not mapping.behind(mapping.ORDER_RANK, status, OC_ORDER_STATUSES[previous])


def test_every_query_v2_field_of_a_parcel_reaches_the_shipment() -> None:
    [order] = parse_outbound_callback(OUTBOUND_QUERY_RESPONSE.encode()).data
    assert mapping.shipments(order) == [
        Shipment(
            tracking_number="ZDBBXK0357800000",
            carrier_code="XDP",
            carrier_name="XDP",
            chargeable_weight=Decimal("11000.0000"),
            chargeable_weight_unit="g",
            fee_amount=Decimal(19),
            fee_currency="GBP",
            order_number="OCO0000011225074GB",
            skus=[SkuLine(mf_sku_id="OC0000000675549", quantity=2, serial_numbers=["A01", "A02"])],
        )
    ]
    fetched = datetime(2026, 11, 27, tzinfo=UTC)
    state = mapping.order_state(order, fetched)
    assert (state.auto_fulfillment_ef, state.shipments) == (False, mapping.shipments(order))
    assert (state.status, state.oc_status) == ("unknown", None)  # the example has no status

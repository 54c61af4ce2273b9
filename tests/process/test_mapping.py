"""The pure mapping from OC's payloads to our events: ranks along OC's order of an order's
life, which OC field feeds which event field, what events say of their enrichment, whole
events from a change, and deterministic event ids."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.process import cloudevents, mapping
from gateway.process.decide import behind
from gateway.process.enrich import Enriched
from gateway.process.mapping import Change
from schemas.callbacks import parse_outbound_callback
from schemas.events import (
    EnrichmentPart,
    OcOrderState,
    OutboundOrderStatusChanged,
    Shipment,
    SkuLine,
)
from schemas.oc_status import OC_ORDER_STATUSES
from tests.helpers import outbound_callback
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
        assert not behind(mapping.ORDER_RANK, previous, status), (earlier, later)
        assert not behind(mapping.ORDER_RANK, status, status)
    assert behind(mapping.ORDER_RANK, "shipped", OC_ORDER_STATUSES["Picked"])


def test_exceptions_can_come_at_any_point_of_the_life() -> None:
    for value in ("Exception", "Undeliverable return", "failed"):
        status = OC_ORDER_STATUSES[value]
        assert status not in mapping.ORDER_RANK
        for previous in OC_LIFE:
            assert not behind(mapping.ORDER_RANK, OC_ORDER_STATUSES[previous], status)
            assert not behind(mapping.ORDER_RANK, status, OC_ORDER_STATUSES[previous])


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


NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("enabled", "missing", "final", "status", "follow_up"),
    [
        (False, (), False, "not_requested", False),
        (True, (), False, "complete", False),
        (True, ("stock",), False, "partial", True),
        (True, ("order", "stock"), False, "unavailable", True),
        (True, ("order", "stock"), True, "partial", False),  # a given-up follow-up's last word
        (True, (), True, "complete", False),
    ],
)
def test_enrichment_status(
    enabled: bool,
    missing: tuple[EnrichmentPart, ...],
    final: bool,
    status: str,
    follow_up: bool,
) -> None:
    said = mapping.enrichment_status(enabled, missing, 2, final=final)
    assert (said.status, said.missing, said.follow_up) == (status, list(missing), follow_up)


CHANGE = Change(
    event_id="e-1",
    key="OCO1",
    occurred_at=NOW,
    received_at=NOW,
    delivery_id="d-1",
    reconciled=False,
    previous="packed",
    regressed=False,
    enrichment=mapping.enrichment_status(True, (), 2),
    enriched=Enriched(entity=OcOrderState(order_number="OCO1", status="shipped", fetched_at=NOW)),
)


def test_a_whole_status_event_from_a_change() -> None:
    [order] = parse_outbound_callback(outbound_callback("OCO1", "Outbound", message_id="m")).data
    event = mapping.outbound_status_changed(replace(CHANGE, regressed=True), order, None)
    assert isinstance(event, OutboundOrderStatusChanged)
    assert (event.status, event.oc_status) == ("shipped", "Outbound")
    assert (event.previous_status, event.status_regressed) == ("packed", True)
    assert event.oc_order is not None
    assert event.oc_order.status == "shipped"
    assert event.shipments[0].skus[0].serial_numbers == ["A01", "A02"]
    assert event.model_dump(by_alias=True)["statusRegressed"] is True


def test_a_previous_status_of_another_kind_is_not_carried() -> None:
    [order] = parse_outbound_callback(outbound_callback("OCO1", "SHIPPED", message_id="m")).data
    event = mapping.outbound_status_changed(replace(CHANGE, previous="restocked"), order, None)
    assert event.previous_status is None


@given(st.text(max_size=40), st.text(max_size=80))
def test_event_ids_are_uuid5_of_type_and_identity(event_type: str, identity: str) -> None:
    expected = uuid.uuid5(cloudevents._NAMESPACE, f"{event_type}|{identity}")
    assert cloudevents.event_id(event_type, identity) == str(expected)

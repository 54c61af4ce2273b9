"""The pure mapping: what events say of their enrichment, whole events from a change, and
deterministic event ids."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.process import cloudevents, mapping
from gateway.process.enrich import Enriched
from gateway.process.mapping import Change
from schemas.callbacks import parse_outbound_callback
from schemas.events import EnrichmentPart, OcOrderState, OutboundOrderStatusChanged
from tests.helpers import outbound_callback

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

"""OC's status spellings map onto our closed sets; anything else is "unknown"."""

from __future__ import annotations

from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.events import OrderStatus, ReturnStatus
from schemas.oc_status import OC_ORDER_STATUSES, normalize_order_status, normalize_return_status

from .oc_examples import ORDER_STATUS_VALUES as OC_VALUES


def _spelled_otherwise(value: str) -> list[str]:
    """`value` as other systems might spell it: case, spaces, `-`, `_`, no separator."""
    words = value.replace("-", " ").split()
    return [
        value.upper(),
        value.lower(),
        value.swapcase(),
        f"  {value} ",
        "-".join(words),
        "_".join(words).upper(),
        " ".join(words).title(),
        "".join(w.capitalize() for w in words),
        "ORDER_STATUS_" + "_".join(words).upper(),
    ]


@pytest.mark.parametrize(("value", "expected"), OC_VALUES, ids=[v for v, _ in OC_VALUES])
def test_every_value_oc_shows_maps_onto_a_known_status(value: str, expected: OrderStatus) -> None:
    assert normalize_order_status(value) == expected
    for spelling in _spelled_otherwise(value):
        assert normalize_order_status(spelling) == expected, spelling


def test_the_table_of_oc_values_is_oc_s_list_in_oc_s_order() -> None:
    assert list(OC_ORDER_STATUSES.items()) == OC_VALUES


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("SHIPPED", "shipped"),
        ("Shipped", "shipped"),
        ("shipped", "shipped"),
        ("OUTBOUND_SHIPPED", "shipped"),
        ("Outbound-Shipped", "shipped"),
        ("ORDER_STATUS_SHIPPED", "shipped"),
        ("DISPATCHED", "shipped"),
        ("已发货", "shipped"),
        ("CREATED", "created"),
        ("New", "created"),
        ("ALLOCATED", "allocated"),
        ("ACCEPTED", "allocated"),  # OC's "Accepted" comes after "Submitted" (created)
        ("picking-task-created", "picking"),
        ("DELIVERING", "shipped"),
        ("return_to_sender", "exception"),
        ("PICKING", "picking"),
        ("in progress", "picking"),
        ("PACKED", "packed"),
        ("READY_TO_SHIP", "packed"),
        ("DELIVERED", "delivered"),
        ("signed", "delivered"),
        ("ON_HOLD", "on_hold"),
        ("OnHold", "on_hold"),
        ("on hold", "on_hold"),
        ("EXCEPTION", "exception"),
        ("delivery_failed", "exception"),
        ("CANCELLED", "cancelled"),
        ("Canceled", "cancelled"),
        ("order.cancelled", "cancelled"),
        (" shipped ", "shipped"),
    ],
)
def test_order_statuses(raw: str, expected: OrderStatus) -> None:
    assert normalize_order_status(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("CREATED", "created"),
        ("RMA_CREATED", "created"),
        ("IN_TRANSIT", "in_transit"),
        ("Return In Transit", "in_transit"),
        ("RECEIVED", "received"),
        ("rma-received", "received"),
        ("INSPECTED", "inspected"),
        ("QC", "inspected"),
        ("RESTOCKED", "restocked"),
        ("PUTAWAY", "restocked"),
        ("RETURN_STATUS_RESTOCKED", "restocked"),
        ("DISPOSED", "disposed"),
        ("destroyed", "disposed"),
        ("CANCELLED", "cancelled"),
        ("已签收", "received"),
    ],
)
def test_return_statuses(raw: str, expected: ReturnStatus) -> None:
    assert normalize_return_status(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "   ", "FLYING", "42", 42, "SHIPPED_TO_MARS"])
def test_unrecognised_statuses_are_unknown(raw: object) -> None:
    assert normalize_order_status(raw) == "unknown"
    assert normalize_return_status(raw) == "unknown"


@given(st.text())
def test_normalisation_never_raises_and_stays_in_the_known_sets(raw: str) -> None:
    assert normalize_order_status(raw) in get_args(OrderStatus)
    assert normalize_return_status(raw) in get_args(ReturnStatus)


def test_every_known_status_maps_to_itself() -> None:
    for status in get_args(OrderStatus):
        assert normalize_order_status(status.upper()) == status
    for status in get_args(ReturnStatus):
        assert normalize_return_status(status.upper()) == status

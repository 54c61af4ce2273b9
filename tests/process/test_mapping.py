"""The pure mapping from OC's payloads to our events: ranks along OC's order of an order's
life, and which OC field feeds which event field."""

from __future__ import annotations

from itertools import pairwise

from gateway.process import mapping
from schemas.oc_status import OC_ORDER_STATUSES

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

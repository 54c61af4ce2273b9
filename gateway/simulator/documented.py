"""OC's documented examples, held by every world that is big enough: the example order
(oc-api README §3, §6.2) and the ids of the return stock snapshot's example (§6.7).

They are made without the RNG, so seeded worlds stay as they were, at times relative to
the world's epoch, and nothing moves them on: a look-up of a documented id answers the way
OC's page shows it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Final

from gateway.simulator.entities import (
    IN_DELIVERY,
    Consignee,
    Order,
    OrderLine,
    Parcel,
    ReturnedItem,
    ReturnStockCell,
)

if TYPE_CHECKING:
    from gateway.simulator.data import World

DOCUMENTED_ORDER: Final = "OCO0000011225074GB"
"""The order of OC's own examples, which tools/sample-callback.json uses too: the simulator
knows it, so the sample's look-ups find it."""
DOCUMENTED_SKU: Final = "OC0000000675549"

DOCUMENTED_RETURN_IDS: Final = ("DE01UC", "DE01UC001", "DE01UC002", "DE01UC003", "DE01UC004")
"""The ids the return stock snapshot's example asks for that OC finds; the example's sixth
id, `asdfg12345`, is its odd one out and stays unknown (`failedList`)."""

# uniqueId, SKU (index into the world's SKUs), dimensions cm, weight g, available,
# reservedAllocated, reservedHold, reservedVAS, unfulfillable, suspend, days since put-away.
# DE01UC001 is the row of the page's example response, as it shows it.
_RETURNED: Final = (
    ("DE01UC", 0, (22, 16, 9), 480, 5, 0, 1, 0, 0, 0, 40),
    ("DE01UC001", 0, (20, 15, 8), 450, 3, 1, 0, 0, 1, 0, 30),
    ("DE01UC002", 1, (35, 25, 12), 1200, 0, 0, 2, 0, 1, 0, 12),
    ("DE01UC003", 2, (10, 10, 4), 150, 1, 0, 0, 1, 0, 1, 5),
    ("DE01UC004", 3, (48, 30, 20), 2600, 2, 2, 0, 0, 0, 0, 1),
)


def _sku_id(index: int) -> str:
    """The world's `index`-th SKU id (lifecycle.populate numbers them this way)."""
    return f"OC{675549 + index * 17:013d}"


def add_documented_order(world: World) -> None:
    """The documented example order, out for delivery."""
    if not world.size.orders or DOCUMENTED_SKU not in world.skus:
        return
    if DOCUMENTED_ORDER in world.orders:
        return
    at = world.epoch - timedelta(hours=20)
    world.orders[DOCUMENTED_ORDER] = Order(
        order_number=DOCUMENTED_ORDER,
        reference_number="TEST_123456789",
        ebay_id="buyer_sample",
        ebay_order_id="25-11158-23993",
        region="UK",
        shipping_service_code="GBDomStd_XDP",
        created_at=at,
        status=IN_DELIVERY,
        status_time=at + timedelta(hours=6),
        lines=[OrderLine(DOCUMENTED_SKU, 2, ["A01", "A02"])],
        consignee=Consignee(
            name="Andrea Jakab",
            address1="93 Maresfield Road",
            city="London",
            zip_code="SE1 1AA",
            country_code="GB",
            phone="+44 20 7946 0000",
            email="andrea.jakab@example.com",
        ),
        auto_fulfillment_ef=False,
        parcel=Parcel("ZDBBXK0357800000", "XDP", 11000, "19", "GBP"),
    )


def add_documented_return_stock(world: World) -> None:
    """The returned items of the return stock snapshot's example, in returns warehouse DE01."""
    if not all(_sku_id(row[1]) in world.skus for row in _RETURNED):
        return
    for unique_id, sku, (length, width, height), weight, *quantities, days in _RETURNED:
        available, allocated, hold, vas, unfulfillable, suspend = quantities
        world.returned_items.setdefault(
            unique_id,
            ReturnedItem(
                unique_id=unique_id,
                mf_sku_id=_sku_id(sku),
                warehouse_code="DE01",
                length_cm=length,
                width_cm=width,
                height_cm=height,
                weight_g=weight,
                stock=ReturnStockCell(
                    available=available,
                    reserved_allocated=allocated,
                    reserved_hold=hold,
                    reserved_vas=vas,
                    unfulfillable=unfulfillable,
                    suspend=suspend,
                    put_away_time=world.epoch - timedelta(days=days),
                ),
            ),
        )


def add_documented_examples(world: World) -> None:
    add_documented_order(world)
    add_documented_return_stock(world)

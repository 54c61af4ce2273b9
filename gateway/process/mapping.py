"""OC's parsed payloads -> our event models (pure functions, no I/O).

Everything OC-specific about the event contract lives here and in schemas/: which OC
field feeds which event field, how statuses rank, what a regression is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Final

from schemas.callbacks import OcOutboundOrder, OcReturnItem, OcTrackingEntry
from schemas.events import (
    Consignee,
    OcOrderState,
    OcReturnState,
    OrderStatus,
    ReturnItem,
    ReturnStatus,
    Shipment,
    SkuLine,
    StockLevel,
)
from schemas.oc_entities import OcReturnOrder, OcStockRow

# How far along its life an order or a return is. Statuses without a rank (on hold,
# exception, unknown) can come and go at any point and never count as a regression.
ORDER_RANK: Final[dict[str, int]] = {
    "created": 1,
    "allocated": 2,
    "picking": 3,
    "packed": 4,
    "shipped": 5,
    "delivered": 6,
    "cancelled": 7,
}
RETURN_RANK: Final[dict[str, int]] = {
    "created": 1,
    "in_transit": 2,
    "received": 3,
    "inspected": 4,
    "restocked": 5,
    "disposed": 5,
    "cancelled": 6,
}


def behind(ranks: Mapping[str, int], previous: str | None, status: str) -> bool:
    """Whether `status` ranks below `previous` (both ranked)."""
    if previous is None:
        return False
    before, now = ranks.get(previous), ranks.get(status)
    return before is not None and now is not None and now < before


def regressed(
    ranks: Mapping[str, int],
    previous: str | None,
    previous_at_ms: int | None,
    status: str,
    occurred_at: datetime,
) -> bool:
    """True when a change is earlier than one already published: its status ranks below
    the last one, or OC dated it before the last one (delivered out of order)."""
    if previous is None:
        return False
    if behind(ranks, previous, status):
        return True
    return previous_at_ms is not None and int(occurred_at.timestamp() * 1000) < previous_at_ms


def sku_lines(entry: OcTrackingEntry) -> list[SkuLine]:
    return [
        SkuLine(
            mf_sku_id=line.mf_sku_id,
            quantity=line.sku_quantity,
            serial_numbers=line.serial_numbers(),
        )
        for line in entry.sku_list
        if line.mf_sku_id
    ]


def shipments(order: OcOutboundOrder) -> list[Shipment]:
    return [
        Shipment(
            tracking_number=entry.tracking_number,
            carrier_code=entry.lm_carrier_code,
            carrier_name=entry.lm_carrier_name,
            chargeable_weight=entry.chargeable_weight,
            chargeable_weight_unit=entry.chargeable_weight_unit,
            fee_amount=entry.fee_amount,
            fee_currency=entry.fee_amount_currency,
            order_number=entry.order_number,
            skus=sku_lines(entry),
        )
        for entry in order.tracking_number_list
    ]


def order_skus(order: OcOutboundOrder) -> list[str]:
    """The distinct SKU ids of an order, in first-seen order."""
    return list(dict.fromkeys(line.mf_sku_id for line in order.sku_lines() if line.mf_sku_id))


def consignee(order: OcOutboundOrder) -> Consignee:
    return Consignee(
        name=order.consignee_name,
        company=order.company_name,
        address1=order.consignee_address1,
        address2=order.consignee_address2,
        house_number=order.house_number,
        city=order.consignee_city,
        province_or_state=order.consignee_province_or_state,
        zip_code=order.consignee_zip_code,
        country_code=order.consignee_country_code,
        phone=order.consignee_phone,
        email=order.consignee_email,
    )


def order_state(order: OcOutboundOrder, fetched_at: datetime) -> OcOrderState:
    status: OrderStatus = order.normalized_status()
    return OcOrderState(
        order_number=order.order_number,
        status=status,
        oc_status=order.raw_status(),
        reference_number=order.reference_number,
        service_region=order.service_region,
        created_at=order.order_creation_time,
        auto_fulfillment_ef=order.auto_fulfillment_ef,
        shipments=shipments(order),
        fetched_at=fetched_at,
    )


def stock_level(row: OcStockRow) -> StockLevel | None:
    location = row.location()
    if not location:
        return None
    return StockLevel(
        mf_sku_id=row.mf_sku_id,
        location=location,
        location_kind="service_region" if row.service_region else "return_warehouse",
        available=row.available,
        in_transit=row.in_transit,
        received=row.received,
        reserved_allocated=row.reserved_allocated,
        reserved_hold=row.reserved_hold,
        reserved_vas=row.reserved_vas,
        suspend=row.suspend,
        unfulfillable=row.unfulfillable,
    )


def stock_levels(rows: Iterable[OcStockRow]) -> list[StockLevel]:
    return [level for row in rows if (level := stock_level(row)) is not None]


def return_items(items: Sequence[OcReturnItem]) -> list[ReturnItem]:
    return [
        ReturnItem(
            mf_sku_id=item.mf_sku_id,
            seller_sku=item.seller_sku_id,
            quantity=item.quantity,
            condition=item.condition,
        )
        for item in items
    ]


def return_state(order: OcReturnOrder, fetched_at: datetime) -> OcReturnState | None:
    number = order.return_number
    if number is None:
        return None
    status: ReturnStatus = order.normalized_status()
    return OcReturnState(
        return_number=number,
        status=status,
        oc_status=order.raw_status(),
        order_number=order.original_order_number,
        warehouse_code=order.warehouse_code,
        tracking_number=order.tracking_number,
        carrier_code=order.carrier_code,
        items=return_items(order.item_list),
        created_at=order.create_time,
        updated_at=order.occurred_at(),
        fetched_at=fetched_at,
    )


def level_key(level: StockLevel) -> str:
    """The inventory topic's key: `mfSkuId:location` (latest level wins on compaction)."""
    return f"{level.mf_sku_id}:{level.location}"

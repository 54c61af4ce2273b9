"""OC's parsed payloads -> our whole event models (pure functions, no I/O).

Everything OC-specific about the event contract lives here and in schemas/: which OC
field feeds which event field, how statuses rank, and how each event is built from a
change, its decision and its enrichment.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal, TypeGuard, get_args

from gateway.process.enrich import Enriched
from gateway.process.state import Status
from schemas.callbacks import OcOutboundOrder, OcReturnItem, OcTrackingEntry, ReturnCallbackItem
from schemas.events import (
    Consignee,
    Enrichment,
    EnrichmentPart,
    InventoryLevel,
    OcOrderState,
    OcReturnState,
    OrderStatus,
    OutboundOrderEnriched,
    OutboundOrderStatusChanged,
    ReturnEnriched,
    ReturnItem,
    ReturnStatus,
    ReturnUpdated,
    Shipment,
    SkuLine,
    StockLevel,
)
from schemas.oc_entities import OcReturnOrder, OcStockRow

LevelSource = Literal["stock_snapshot", "return_stock_snapshot", "inventory_callback"]
_ORDER_STATUSES: Final[frozenset[str]] = frozenset(get_args(OrderStatus))
_RETURN_STATUSES: Final[frozenset[str]] = frozenset(get_args(ReturnStatus))

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


def level_content(level: StockLevel) -> tuple[int | None, ...]:
    """What a level says, comparable with another of the same key."""
    return (
        level.available,
        level.in_transit,
        level.received,
        level.reserved_allocated,
        level.reserved_hold,
        level.reserved_vas,
        level.suspend,
        level.unfulfillable,
    )


def level_key(level: StockLevel) -> str:
    """The inventory topic's key: `mfSkuId:location` (latest level wins on compaction)."""
    return f"{level.mf_sku_id}:{level.location}"


def at_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _is_order_status(value: object) -> TypeGuard[OrderStatus]:
    return value in _ORDER_STATUSES


def _is_return_status(value: object) -> TypeGuard[ReturnStatus]:
    return value in _RETURN_STATUSES


def as_order_status(status: Status | None) -> OrderStatus | None:
    return status if _is_order_status(status) else None


def as_return_status(status: Status | None) -> ReturnStatus | None:
    return status if _is_return_status(status) else None


def enrichment_status(
    enabled: bool, missing: Sequence[EnrichmentPart], parts: int, *, final: bool = False
) -> Enrichment:
    """What an event says of its enrichment. `final`: no follow-up will come after it."""
    if not enabled:
        return Enrichment(status="not_requested")
    if not missing:
        return Enrichment(status="complete")
    if len(missing) >= parts and not final:
        return Enrichment(status="unavailable", missing=list(missing), follow_up=True)
    return Enrichment(status="partial", missing=list(missing), follow_up=not final)


@dataclass(frozen=True, slots=True)
class Change:
    """What a status event says beyond its OC item: who it is, when, how it was decided
    and what enrichment brought."""

    event_id: str
    key: str
    occurred_at: datetime
    received_at: datetime
    delivery_id: str
    reconciled: bool
    previous: Status | None
    regressed: bool
    enrichment: Enrichment
    enriched: Enriched


def outbound_status_changed(
    change: Change, order: OcOutboundOrder, consignee: Consignee | None
) -> OutboundOrderStatusChanged:
    entity = change.enriched.entity
    return OutboundOrderStatusChanged(
        event_id=change.event_id,
        occurred_at=change.occurred_at,
        received_at=change.received_at,
        delivery_id=change.delivery_id,
        reconciled=change.reconciled,
        order_number=change.key,
        reference_number=order.reference_number,
        service_region=order.service_region,
        status=order.normalized_status(),
        oc_status=order.raw_status(),
        previous_status=as_order_status(change.previous),
        status_regressed=change.regressed,
        shipments=shipments(order),
        consignee=consignee,
        enrichment=change.enrichment,
        oc_order=entity if isinstance(entity, OcOrderState) else None,
        stock_levels=list(change.enriched.stock),
    )


def return_updated(change: Change, item: ReturnCallbackItem) -> ReturnUpdated:
    entity = change.enriched.entity
    return ReturnUpdated(
        event_id=change.event_id,
        occurred_at=change.occurred_at,
        received_at=change.received_at,
        delivery_id=change.delivery_id,
        reconciled=change.reconciled,
        return_number=change.key,
        order_number=item.original_order_number,
        status=item.normalized_status(),
        oc_status=item.raw_status(),
        previous_status=as_return_status(change.previous),
        status_regressed=change.regressed,
        tracking_number=item.tracking_number,
        carrier_code=item.carrier_code,
        items=return_items(item.item_list),
        enrichment=change.enrichment,
        oc_return=entity if isinstance(entity, OcReturnState) else None,
        return_stock=list(change.enriched.stock),
    )


@dataclass(frozen=True, slots=True)
class Completion:
    """What an `*.enriched` follow-up event says: the event it completes and what OC
    answered for it since."""

    event_id: str
    key: str
    enriches_event_id: str
    occurred_at: datetime
    received_at: datetime
    delivery_id: str
    enrichment: Enrichment
    enriched: Enriched


def outbound_enriched(done: Completion) -> OutboundOrderEnriched:
    entity = done.enriched.entity
    return OutboundOrderEnriched(
        event_id=done.event_id,
        occurred_at=done.occurred_at,
        received_at=done.received_at,
        delivery_id=done.delivery_id,
        order_number=done.key,
        enriches_event_id=done.enriches_event_id,
        enrichment=done.enrichment,
        oc_order=entity if isinstance(entity, OcOrderState) else None,
        stock_levels=list(done.enriched.stock),
    )


def return_enriched(done: Completion) -> ReturnEnriched:
    entity = done.enriched.entity
    return ReturnEnriched(
        event_id=done.event_id,
        occurred_at=done.occurred_at,
        received_at=done.received_at,
        delivery_id=done.delivery_id,
        return_number=done.key,
        enriches_event_id=done.enriches_event_id,
        enrichment=done.enrichment,
        oc_return=entity if isinstance(entity, OcReturnState) else None,
        return_stock=list(done.enriched.stock),
    )


def inventory_level(
    event_id: str, observed_at: datetime, source: LevelSource, level: StockLevel
) -> InventoryLevel:
    return InventoryLevel(event_id=event_id, observed_at=observed_at, source=source, level=level)

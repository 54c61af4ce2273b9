"""Our typed events: the contract with internal services (strict, frozen, versioned).

Every event travels as the value of a CloudEvents 1.0 Kafka record in binary mode; its
`type` field equals the record's `ce_type` header and `eventId` equals `ce_id`. Field
names are camelCase on the wire. A breaking change means a new model with a new `.vN`
type and a new topic version; tests compare the models with the committed JSON Schemas.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

OUTBOUND_STATUS_CHANGED: Final = "oc.outbound.order.status_changed.v1"
OUTBOUND_ENRICHED: Final = "oc.outbound.order.enriched.v1"
RETURN_UPDATED: Final = "oc.return.updated.v1"
RETURN_ENRICHED: Final = "oc.return.enriched.v1"
INVENTORY_LEVEL: Final = "oc.inventory.level.v1"

OrderStatus = Literal[
    "created",
    "allocated",
    "picking",
    "packed",
    "shipped",
    "delivered",
    "on_hold",
    "exception",
    "cancelled",
    "unknown",
]
ReturnStatus = Literal[
    "created",
    "in_transit",
    "received",
    "inspected",
    "restocked",
    "disposed",
    "cancelled",
    "unknown",
]
EnrichmentPart = Literal["order", "stock", "return_order", "return_stock"]


class EventModel(BaseModel):
    """Base of every event model: immutable, no unknown fields, camelCase on the wire."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        ser_json_timedelta="iso8601",
    )


class Enrichment(EventModel):
    """What the gateway could add from OC's API, and what is still missing."""

    status: Literal["complete", "partial", "unavailable", "not_requested"] = Field(
        description="complete: every look-up answered; partial/unavailable: some/all "
        "missing (a follow-up event will carry them); not_requested: enrichment is off."
    )
    missing: list[EnrichmentPart] = Field(
        default_factory=list, description="Look-ups that did not answer in time."
    )
    follow_up: bool = Field(
        False, description="True when an *.enriched event will follow with what is missing."
    )


class Consignee(EventModel):
    """Personal data of the recipient. Published only where the topic's policy allows;
    each value may be as sent, masked, or an HMAC (hex) depending on that policy."""

    name: str | None = None
    company: str | None = None
    address1: str | None = None
    address2: str | None = None
    house_number: str | None = None
    city: str | None = None
    province_or_state: str | None = None
    zip_code: str | None = None
    country_code: str | None = None
    phone: str | None = None
    email: str | None = None


class SkuLine(EventModel):
    mf_sku_id: str = Field(description="OC's SKU id (MFSKUID).")
    quantity: int | None = None
    serial_numbers: list[str] = Field(default_factory=list)


class Shipment(EventModel):
    """One parcel of an outbound order, as OC reports it."""

    tracking_number: str | None = None
    carrier_code: str | None = None
    carrier_name: str | None = None
    chargeable_weight: Decimal | None = None
    chargeable_weight_unit: str | None = None
    fee_amount: Decimal | None = None
    fee_currency: str | None = None
    order_number: str | None = Field(
        None, description="The order OC lists this parcel under (its own orderNumber)."
    )
    skus: list[SkuLine] = Field(default_factory=list)


class StockLevel(EventModel):
    """Stock of one SKU in one place (a service region, or a returns warehouse)."""

    mf_sku_id: str
    location: str = Field(description="Service region (e.g. UK, US-West) or warehouse code.")
    location_kind: Literal["service_region", "return_warehouse"]
    available: int | None = None
    in_transit: int | None = None
    received: int | None = None
    reserved_allocated: int | None = None
    reserved_hold: int | None = None
    reserved_vas: int | None = Field(None, alias="reservedVAS")
    suspend: int | None = None
    unfulfillable: int | None = None


class OcOrderState(EventModel):
    """The order as OC's Outbound Order Query v2 returned it during enrichment."""

    order_number: str
    status: OrderStatus
    oc_status: str | None = None
    reference_number: str | None = None
    service_region: str | None = None
    created_at: datetime | None = None
    auto_fulfillment_ef: bool | None = Field(None, alias="autoFulfillmentEF")
    shipments: list[Shipment] = Field(default_factory=list)
    fetched_at: datetime


class ReturnItem(EventModel):
    mf_sku_id: str | None = None
    seller_sku: str | None = None
    quantity: int | None = None
    condition: str | None = None


class OcReturnState(EventModel):
    """The return order as OC's return-order query returned it during enrichment."""

    return_number: str
    status: ReturnStatus
    oc_status: str | None = None
    order_number: str | None = None
    warehouse_code: str | None = None
    tracking_number: str | None = None
    carrier_code: str | None = None
    items: list[ReturnItem] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    fetched_at: datetime


class EventHeader(EventModel):
    """Fields every event carries."""

    event_id: str = Field(description="Deterministic id; equals the ce_id header.")
    occurred_at: datetime = Field(description="When OC says the change happened.")
    received_at: datetime = Field(description="When the gateway received the callback.")
    delivery_id: str = Field(description="Id of the callback delivery this event came from.")
    reconciled: bool = Field(
        False,
        description="True when the change was found by polling OC, not by a callback.",
    )


class OutboundOrderStatusChanged(EventHeader):
    """An outbound order changed; published once per distinct callback."""

    type: Literal["oc.outbound.order.status_changed.v1"] = OUTBOUND_STATUS_CHANGED
    order_number: str
    reference_number: str | None = None
    service_region: str | None = None
    status: OrderStatus
    oc_status: str | None = Field(None, description="The status string exactly as OC sent it.")
    previous_status: OrderStatus | None = None
    status_regressed: bool = Field(
        False,
        description="True when this status is earlier in the order's life than one "
        "already published (OC delivered out of order); published, not reordered.",
    )
    shipments: list[Shipment] = Field(default_factory=list)
    consignee: Consignee | None = None
    enrichment: Enrichment
    oc_order: OcOrderState | None = None
    stock_levels: list[StockLevel] = Field(default_factory=list)


class OutboundOrderEnriched(EventHeader):
    """The enrichment that an earlier status event could not carry in time."""

    type: Literal["oc.outbound.order.enriched.v1"] = OUTBOUND_ENRICHED
    order_number: str
    enriches_event_id: str = Field(description="eventId of the status event this completes.")
    enrichment: Enrichment
    oc_order: OcOrderState | None = None
    stock_levels: list[StockLevel] = Field(default_factory=list)


class ReturnUpdated(EventHeader):
    """A return (RMA) order changed."""

    type: Literal["oc.return.updated.v1"] = RETURN_UPDATED
    return_number: str
    order_number: str | None = None
    status: ReturnStatus
    oc_status: str | None = None
    previous_status: ReturnStatus | None = None
    status_regressed: bool = False
    tracking_number: str | None = None
    carrier_code: str | None = None
    items: list[ReturnItem] = Field(default_factory=list)
    enrichment: Enrichment
    oc_return: OcReturnState | None = None
    return_stock: list[StockLevel] = Field(default_factory=list)


class ReturnEnriched(EventHeader):
    """The enrichment that an earlier return event could not carry in time."""

    type: Literal["oc.return.enriched.v1"] = RETURN_ENRICHED
    return_number: str
    enriches_event_id: str
    enrichment: Enrichment
    oc_return: OcReturnState | None = None
    return_stock: list[StockLevel] = Field(default_factory=list)


class InventoryLevel(EventModel):
    """The latest known stock of one SKU in one place (compacted topic: latest wins)."""

    type: Literal["oc.inventory.level.v1"] = INVENTORY_LEVEL
    event_id: str
    observed_at: datetime = Field(description="When OC reported this level.")
    source: Literal["stock_snapshot", "return_stock_snapshot", "inventory_callback"]
    level: StockLevel


Event = Annotated[
    OutboundOrderStatusChanged
    | OutboundOrderEnriched
    | ReturnUpdated
    | ReturnEnriched
    | InventoryLevel,
    Field(discriminator="type"),
]

EVENT_MODELS: tuple[type[EventModel], ...] = (
    OutboundOrderStatusChanged,
    OutboundOrderEnriched,
    ReturnUpdated,
    ReturnEnriched,
    InventoryLevel,
)

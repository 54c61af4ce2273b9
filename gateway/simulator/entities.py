"""The simulated OC world's records: SKUs, stock cells, movements, orders, returns.

Plain mutable dataclasses; `data.World` owns them and `lifecycle` changes them. Outbound
order statuses are OC's own values, spelled as OC shows them (oc-api README §3.1); return
statuses are OC-style strings (`RECEIVED`; OC's are not known). That is what the simulator
puts on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any, Final

from schemas.callbacks import CallbackKind

DRAFT: Final = "Draft"
SUBMITTED: Final = "Submitted"
ACCEPTED: Final = "Accepted"
CREATE_PICKING_TASK: Final = "Create picking task"
PICKED: Final = "Picked"
PACKED: Final = "Packed"
OUTBOUND: Final = "Outbound"
IN_DELIVERY: Final = "In-delivery"
DELIVERED: Final = "Delivered"
EXCEPTION: Final = "Exception"
UNDELIVERABLE_RETURN: Final = "Undeliverable return"
FAILED: Final = "failed"
CANCELLED: Final = "Cancelled"

ORDER_LIFE: Final = (
    DRAFT,
    SUBMITTED,
    ACCEPTED,
    CREATE_PICKING_TASK,
    PICKED,
    PACKED,
    OUTBOUND,
    IN_DELIVERY,
    DELIVERED,
)
"""An outbound order's life in OC's order. The simulator creates orders as Submitted;
Draft is only for orders asked for in that status (they reserve nothing until submitted)."""

ORDER_FLOW: Final[Mapping[str, str]] = {
    **dict(pairwise(ORDER_LIFE)),
    EXCEPTION: DELIVERED,
}
"""The usual next status of an open outbound order."""

ORDER_EXITS: Final[Mapping[str, tuple[tuple[str, float], ...]]] = {
    DRAFT: ((CANCELLED, 0.05),),
    SUBMITTED: ((CANCELLED, 0.03), (FAILED, 0.02)),
    ACCEPTED: ((CANCELLED, 0.02),),
    IN_DELIVERY: ((EXCEPTION, 0.05),),
    EXCEPTION: ((UNDELIVERABLE_RETURN, 0.4),),
}
"""The side exits: from a status, the other statuses it may go to, and how often."""

ORDER_STATUSES: Final = (*ORDER_LIFE, EXCEPTION, UNDELIVERABLE_RETURN, FAILED, CANCELLED)
"""Every outbound order status the simulator speaks: OC's own (oc-api README §3.1)."""

FINAL_ORDER_STATUSES: Final = frozenset({DELIVERED, CANCELLED, FAILED, UNDELIVERABLE_RETURN})

RESERVING_STATUSES: Final = frozenset({SUBMITTED, ACCEPTED, CREATE_PICKING_TASK, PICKED, PACKED})
"""Statuses in which an order's quantities sit in `reservedAllocated`."""


def _loose(text: str) -> str:
    return "".join(c for c in text.casefold() if c.isalnum())


def order_status(text: str) -> str:
    """OC's spelling of an outbound order status written loosely (`in-delivery`,
    `CREATE_PICKING_TASK`); ValueError, naming OC's statuses, for anything else."""
    for status in ORDER_STATUSES:
        if _loose(status) == _loose(text):
            return status
    raise ValueError(f"{text!r} is not one of OC's order statuses: {', '.join(ORDER_STATUSES)}")


RETURN_FLOW: Final[dict[str, str]] = {
    "CREATED": "IN_TRANSIT",
    "IN_TRANSIT": "RECEIVED",
    "RECEIVED": "INSPECTED",
}
"""The usual next status of a return; INSPECTED ends in RESTOCKED or DISPOSED."""

HELD_RETURN_STATUSES: Final = frozenset({"RECEIVED", "INSPECTED"})
"""Statuses in which a return's quantities sit in the warehouse's `reservedHold`."""


@dataclass(frozen=True, slots=True)
class Region:
    name: str
    country: str
    order_suffix: str
    currency: str
    carriers: tuple[str, ...]
    return_warehouse: str


@dataclass(frozen=True, slots=True)
class Sku:
    mf_sku_id: str
    seller_sku_id: str
    length_cm: int
    width_cm: int
    height_cm: int
    weight_g: int


@dataclass(slots=True)
class StockCell:
    """Stock of one SKU in one service region (StockSnapshot v2's row)."""

    available: int = 0
    in_transit: int = 0
    received: int = 0
    reserved_allocated: int = 0
    reserved_hold: int = 0
    reserved_vas: int = 0
    suspend: int = 0
    unfulfillable: int = 0


@dataclass(slots=True)
class ReturnStockCell:
    """Returned stock of one SKU in one returns warehouse."""

    available: int = 0
    reserved_allocated: int = 0
    reserved_hold: int = 0
    reserved_vas: int = 0
    unfulfillable: int = 0
    suspend: int = 0
    put_away_time: datetime | None = None


@dataclass(slots=True)
class ReturnedItem:
    """Returned stock that OC files under an id of its own in a returns warehouse, measured
    on arrival: the return stock snapshot answers such an id (INFERRED from its documented
    example, whose ids look like a warehouse code and a running number: `DE01UC001`)."""

    unique_id: str
    mf_sku_id: str
    warehouse_code: str
    length_cm: int
    width_cm: int
    height_cm: int
    weight_g: int
    stock: ReturnStockCell


@dataclass(frozen=True, slots=True)
class Movement:
    """One line of the stock ledger (GetStockMovement)."""

    movement_id: str
    mf_sku_id: str
    region: str
    bucket: str  # AVL (available) or RSV (reserved for orders)
    quantity: int
    actual_count: int
    reason: str
    order_number: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Consignee:
    name: str
    address1: str
    city: str
    zip_code: str
    country_code: str
    phone: str
    email: str
    house_number: str = ""
    address2: str = ""
    province_or_state: str = ""
    company: str = ""


@dataclass(slots=True)
class OrderLine:
    mf_sku_id: str
    quantity: int
    serials: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Parcel:
    tracking_number: str
    carrier_code: str
    weight_g: int
    fee: str  # decimal text, e.g. "4.35"
    currency: str


@dataclass(slots=True)
class Order:
    order_number: str
    reference_number: str
    ebay_id: str
    ebay_order_id: str
    region: str
    shipping_service_code: str
    created_at: datetime
    status: str
    status_time: datetime
    lines: list[OrderLine]
    consignee: Consignee
    auto_fulfillment_ef: bool
    parcel: Parcel | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_ORDER_STATUSES


@dataclass(slots=True)
class ReturnLine:
    mf_sku_id: str
    seller_sku_id: str
    quantity: int
    condition: str | None = None


@dataclass(slots=True)
class ReturnOrder:
    return_number: str
    order_number: str
    region: str
    warehouse_code: str
    created_at: datetime
    status: str
    status_time: datetime
    reason: str
    lines: list[ReturnLine]
    tracking_number: str | None = None
    carrier_code: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status in ("RESTOCKED", "DISPOSED", "CANCELLED")


@dataclass(frozen=True, slots=True)
class SimCallback:
    """One callback as OC would send it: the exact body bytes and what it is about."""

    kind: CallbackKind
    entity_key: str
    message_id: str
    body: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "entityKey": self.entity_key,
            "messageId": self.message_id,
            "body": self.body.decode(),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> SimCallback:
        kind: CallbackKind = value["kind"]
        return cls(kind, value["entityKey"], value["messageId"], value["body"].encode())


REGIONS: Final[dict[str, Region]] = {
    r.name: r
    for r in (
        Region("UK", "GB", "GB", "GBP", ("XDP", "RM", "DPD"), "UK01"),
        Region("DE", "DE", "DE", "EUR", ("DHL", "DPD", "HERMES"), "DE01"),
        Region("US-East", "US", "US", "USD", ("USPS", "UPS"), "US01"),
        Region("US-West", "US", "US", "USD", ("USPS", "FEDEX"), "US02"),
        Region("AU", "AU", "AU", "AUD", ("AUSPOST",), "AU01"),
    )
}
RETURN_WAREHOUSES: Final = {r.return_warehouse: r.name for r in REGIONS.values()}

"""Inbound OC callbacks: the envelope, one model per kind, and parse functions over raw bytes.

OC does not publish its callback contract (oc-api README §3). The outbound callback is the
INFERRED working shape `{messageId, timestamp, data: [Outbound Order Query v2 order]}`, or
the same orders wrapped the way OC wraps its Query v2 answer, `{code, success, message,
data}` (§3.1); the return and inventory callbacks are INFERRED by analogy (see
`OcReturnOrder` and `OcInventoryUpdate`). Parsing is tolerant: unknown keys are kept, key
spellings are matched loosely, `data` may be one object or a list (or the body may be the
bare item or a bare list), timestamps may be numbers or strings. A body that still fails
is genuine but unexpected: the gateway quarantines it and answers OC.

Each callback yields `(entity_key, items)` groups through `entities()`:
outbound -> orderNumber; return -> the return (RMA) number; inventory ->
`mfSkuId:serviceRegion` (or `mfSkuId:warehouseCode`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Final, Generic, Literal, TypeVar, get_args

from pydantic import Field, TypeAdapter, model_validator

from schemas.oc_entities import (
    CONSIGNEE_FIELDS,
    OcInventoryUpdate,
    OcOutboundOrder,
    OcReturnItem,
    OcReturnOrder,
    OcSkuLine,
    OcTrackingEntry,
)
from schemas.oc_status import normalize_order_status, normalize_return_status
from schemas.tolerant import (
    EpochMillis,
    ListOrOne,
    Text,
    TolerantModel,
    epoch_millis_to_datetime,
    match_key,
)

__all__ = [
    "CALLBACK_KINDS",
    "CONSIGNEE_FIELDS",
    "AnyCallback",
    "CallbackEnvelope",
    "CallbackKind",
    "InventoryCallback",
    "OcInventoryUpdate",
    "OcOutboundOrder",
    "OcReturnItem",
    "OcSkuLine",
    "OcTrackingEntry",
    "OutboundCallback",
    "ReturnCallback",
    "ReturnCallbackItem",
    "normalize_order_status",
    "normalize_return_status",
    "parse_callback",
    "parse_inventory_callback",
    "parse_outbound_callback",
    "parse_return_callback",
]

CallbackKind = Literal["outbound", "return", "inventory"]
CALLBACK_KINDS: Final[tuple[CallbackKind, ...]] = get_args(CallbackKind)

ItemT = TypeVar("ItemT", bound=TolerantModel)


class ReturnCallbackItem(OcReturnOrder):
    """A return callback's item: a return order that must name its return number."""

    @model_validator(mode="after")
    def _has_return_number(self) -> ReturnCallbackItem:
        if not self.return_number:
            raise ValueError("a return callback item needs a return number")
        return self


class InventoryCallbackItem(OcInventoryUpdate):
    """An inventory callback's item: must say where the stock is."""

    @model_validator(mode="after")
    def _has_location(self) -> InventoryCallbackItem:
        if not self.location():
            raise ValueError("an inventory callback item needs serviceRegion or warehouseCode")
        return self


class CallbackEnvelope(TolerantModel, Generic[ItemT]):
    """One or more items of one kind in `data`, wrapped as OC wraps a request
    (`{messageId, timestamp, data}`) or an answer (`{code, success, message, data}`);
    any mix of those keys is read, and other keys are kept."""

    KIND: ClassVar[CallbackKind]

    message_id: Text | None = Field(None, alias="messageId")
    timestamp: EpochMillis | None = Field(None, description="Epoch milliseconds.")
    code: int | str | None = Field(None, description="The answer wrapper's code (0 = OK).")
    success: bool | None = None
    message: str | None = None
    data: ListOrOne[ItemT] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _wrap_bare_body(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {"data": value}
        if isinstance(value, Mapping) and not any(
            isinstance(key, str) and match_key(key) == "data" for key in value
        ):
            return {"data": [value]}
        return value

    @staticmethod
    def item_key(item: ItemT) -> str:
        """The entity an item concerns (the Kafka key of its events)."""
        raise NotImplementedError

    def sent_at(self) -> datetime | None:
        """The envelope's timestamp as an aware datetime."""
        return None if self.timestamp is None else epoch_millis_to_datetime(self.timestamp)

    def entities(self) -> list[tuple[str, list[ItemT]]]:
        """Items grouped by entity key, in the order each key first appears."""
        groups: dict[str, list[ItemT]] = {}
        for item in self.data:
            groups.setdefault(self.item_key(item), []).append(item)
        return list(groups.items())


class OutboundCallback(CallbackEnvelope[OcOutboundOrder]):
    """An outbound-order callback (INFERRED shape, oc-api README §3)."""

    KIND: ClassVar[CallbackKind] = "outbound"

    @staticmethod
    def item_key(item: OcOutboundOrder) -> str:
        return item.order_number

    def occurred_at(self, item: OcOutboundOrder) -> datetime | None:
        """The item's status/update/event time, else the envelope timestamp."""
        return item.occurred_at() or self.sent_at()


class ReturnCallback(CallbackEnvelope[ReturnCallbackItem]):
    """A return (RMA) callback (INFERRED in full)."""

    KIND: ClassVar[CallbackKind] = "return"

    @staticmethod
    def item_key(item: ReturnCallbackItem) -> str:
        key = item.return_number
        assert key is not None  # guaranteed by ReturnCallbackItem's validator
        return key

    def occurred_at(self, item: ReturnCallbackItem) -> datetime | None:
        return item.occurred_at() or self.sent_at()


class InventoryCallback(CallbackEnvelope[InventoryCallbackItem]):
    """An inventory-level callback (INFERRED: StockSnapshot v2 rows plus a change time)."""

    KIND: ClassVar[CallbackKind] = "inventory"

    @staticmethod
    def item_key(item: InventoryCallbackItem) -> str:
        return f"{item.mf_sku_id}:{item.location()}"

    def occurred_at(self, item: InventoryCallbackItem) -> datetime | None:
        return item.occurred_at() or self.sent_at()


AnyCallback = OutboundCallback | ReturnCallback | InventoryCallback

OUTBOUND_CALLBACK: Final = TypeAdapter(OutboundCallback)
RETURN_CALLBACK: Final = TypeAdapter(ReturnCallback)
INVENTORY_CALLBACK: Final = TypeAdapter(InventoryCallback)


def parse_outbound_callback(body: bytes | str) -> OutboundCallback:
    """Parse a raw outbound callback body. Raises pydantic.ValidationError."""
    return OUTBOUND_CALLBACK.validate_json(body)


def parse_return_callback(body: bytes | str) -> ReturnCallback:
    """Parse a raw return callback body. Raises pydantic.ValidationError."""
    return RETURN_CALLBACK.validate_json(body)


def parse_inventory_callback(body: bytes | str) -> InventoryCallback:
    """Parse a raw inventory callback body. Raises pydantic.ValidationError."""
    return INVENTORY_CALLBACK.validate_json(body)


def parse_callback(kind: CallbackKind, body: bytes | str) -> AnyCallback:
    """Parse a raw body of the given kind (the route it arrived on).

    Raises pydantic.ValidationError when the body is not JSON or not that kind's shape,
    and ValueError for an unknown kind.
    """
    if kind == "outbound":
        return parse_outbound_callback(body)
    if kind == "return":
        return parse_return_callback(body)
    if kind == "inventory":
        return parse_inventory_callback(body)
    raise ValueError(f"unknown callback kind: {kind!r}")

"""OC's business objects as they appear in both callbacks and API answers (tolerant).

An outbound order here is the object of Outbound Order Query v2 (oc-api README §6.2), which
the callback is inferred to reuse (§3); a stock row is StockSnapshot v2's row (§6.3). The
return order is INFERRED in full: OC's return-order query and return callback fields are
not published, so several plausible keys are accepted for each value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import AliasChoices, Field

from schemas.events import OrderStatus, ReturnStatus
from schemas.oc_status import normalize_order_status, normalize_return_status
from schemas.tolerant import (
    Count,
    DecimalNumber,
    DecimalString,
    NullableList,
    OcDateTime,
    Text,
    TolerantModel,
    match_key,
    parse_oc_datetime,
)

_EXTRA_TIME_KEYS: Final = ("operateTime", "operationTime", "lastUpdateTime", "modifyTime")

CONSIGNEE_FIELDS: Final = (
    "consigneeName",
    "companyName",
    "consigneeAddress1",
    "consigneeAddress2",
    "houseNumber",
    "consigneeCity",
    "consigneeProvinceOrState",
    "consigneeZipCode",
    "consigneeCountryCode",
    "consigneePhone",
    "consigneeEmail",
)
"""OC's keys that carry the recipient's personal data (for redaction)."""


def _choices(*spellings: str) -> Any:
    """A field that OC may spell in several ways; written back with the first."""
    return Field(None, validation_alias=AliasChoices(*spellings), serialization_alias=spellings[0])


class _Timed(TolerantModel):
    """Event-time lookup over the several keys OC might use."""

    status_time: OcDateTime | None = Field(None, alias="statusTime")
    update_time: OcDateTime | None = Field(None, alias="updateTime")
    event_time: OcDateTime | None = Field(None, alias="eventTime")

    def occurred_at(self) -> datetime | None:
        """When OC says the change happened: statusTime, updateTime, eventTime (then a few
        undeclared spellings such as operateTime), or None."""
        for value in (self.status_time, self.update_time, self.event_time):
            if value is not None:
                return value
        extra = self.first_extra(*_EXTRA_TIME_KEYS)
        if extra is not None:
            try:
                return parse_oc_datetime(extra)
            except ValueError:
                return None
        return None


class _HasStatus(_Timed):
    """Status lookup over the several keys OC might use."""

    status: Text | None = None

    def _status_candidates(self) -> list[Any]:
        return [self.status]

    def raw_status(self) -> str | None:
        """OC's status string as sent, from the first key that carries one.

        Declared keys come first; then any unknown key whose name ends in "status".
        """
        for value in self._status_candidates():
            if isinstance(value, str) and value.strip():
                return value
        for key, value in (self.model_extra or {}).items():
            if match_key(key).endswith("status") and isinstance(value, str) and value.strip():
                return value
        return None


class OcSkuLine(TolerantModel):
    """One SKU line of a parcel (`SKUList[]`)."""

    mf_sku_id: Text | None = Field(None, alias="MFSKUID")
    sku_quantity: Count | None = Field(None, alias="SKUQuantity")
    sn: str | None = Field(None, alias="SN", description="Comma-separated serial numbers.")

    def serial_numbers(self) -> list[str]:
        return [part.strip() for part in (self.sn or "").split(",") if part.strip()]


class OcTrackingEntry(TolerantModel):
    """One parcel of an outbound order (`trackingNumberList[]`)."""

    order_number: Text | None = Field(None, alias="orderNumber")
    tracking_number: Text | None = Field(None, alias="trackingNumber")
    lm_carrier_code: str | None = Field(None, alias="LMCarrierCode")
    lm_carrier_name: str | None = Field(None, alias="LMCarrierName")
    chargeable_weight: DecimalString | None = Field(None, alias="chargeableWeight")
    chargeable_weight_unit: str | None = Field(None, alias="chargeableWeightUnit")
    fee_amount: DecimalNumber | None = Field(None, alias="feeAmount")
    fee_amount_currency: str | None = Field(None, alias="feeAmountCurrency")
    sku_list: NullableList[OcSkuLine] = Field(default_factory=list, alias="SKUList")


class OcOutboundOrder(_HasStatus):
    """An outbound (B2C) order: Outbound Order Query v2's row, and the callback's item.

    The status key is not published; `status`, `orderStatus` and `outboundStatus` are
    read (see `raw_status`). Consignee fields are personal data (`CONSIGNEE_FIELDS`).
    """

    order_number: Text = Field(alias="orderNumber")
    reference_number: Text | None = Field(None, alias="referenceNumber")
    service_region: str | None = Field(None, alias="serviceRegion")
    auto_fulfillment_ef: bool | None = Field(None, alias="autoFulfillmentEF")
    order_creation_time: OcDateTime | None = Field(None, alias="orderCreationTime")
    order_platform: str | None = Field(None, alias="orderPlatform")
    ebay_id: Text | None = Field(None, alias="ebayId")
    ebay_order_id: Text | None = Field(None, alias="ebayOrderId")
    shipping_service_code: str | None = Field(None, alias="shippingServiceCode")
    order_status: Text | None = Field(None, alias="orderStatus")
    outbound_status: Text | None = Field(None, alias="outboundStatus")
    tracking_number_list: NullableList[OcTrackingEntry] = Field(
        default_factory=list, alias="trackingNumberList"
    )
    consignee_name: str | None = Field(None, alias="consigneeName")
    company_name: str | None = Field(None, alias="companyName")
    consignee_address1: str | None = Field(None, alias="consigneeAddress1")
    consignee_address2: str | None = Field(None, alias="consigneeAddress2")
    house_number: Text | None = Field(None, alias="houseNumber")
    consignee_city: str | None = Field(None, alias="consigneeCity")
    consignee_province_or_state: str | None = Field(None, alias="consigneeProvinceOrState")
    consignee_zip_code: Text | None = Field(None, alias="consigneeZipCode")
    consignee_country_code: str | None = Field(None, alias="consigneeCountryCode")
    consignee_phone: Text | None = Field(None, alias="consigneePhone")
    consignee_email: str | None = Field(None, alias="consigneeEmail")

    def _status_candidates(self) -> list[Any]:
        return [self.status, self.order_status, self.outbound_status]

    def normalized_status(self) -> OrderStatus:
        return normalize_order_status(self.raw_status())

    def sku_lines(self) -> list[OcSkuLine]:
        """Every SKU line across the order's parcels."""
        return [line for entry in self.tracking_number_list for line in entry.sku_list]

    def has_consignee(self) -> bool:
        return any(getattr(self, name) for name in _CONSIGNEE_ATTRIBUTES)


_CONSIGNEE_ATTRIBUTES: Final = tuple(
    name for name, field in OcOutboundOrder.model_fields.items() if field.alias in CONSIGNEE_FIELDS
)


class OcStockRow(TolerantModel):
    """Stock of one SKU in one service region (StockSnapshot v2's row).

    Also the INFERRED item of an inventory callback, which may add `warehouseCode`,
    `updateTime` and the movement that caused it (`reason`, `quantity`, `orderNumber`).
    """

    mf_sku_id: Text = Field(alias="MFSKUID")
    service_region: str | None = Field(None, alias="serviceRegion")
    warehouse_code: str | None = Field(None, alias="warehouseCode")
    seller_sku_id: Text | None = Field(None, alias="sellerSkuId")
    available: Count | None = None
    in_transit: Count | None = Field(None, alias="inTransit")
    received: Count | None = None
    reserved_allocated: Count | None = Field(None, alias="reservedAllocated")
    reserved_hold: Count | None = Field(None, alias="reservedHold")
    reserved_vas: Count | None = Field(None, alias="reservedVAS")
    suspend: Count | None = None
    unfulfillable: Count | None = None

    def location(self) -> str | None:
        """The service region, else the warehouse code."""
        return self.service_region or self.warehouse_code


class OcInventoryUpdate(OcStockRow, _Timed):
    """An inventory callback's item (INFERRED): a stock row, when it changed and why."""

    inventory_status: str | None = Field(None, alias="inventoryStatus")
    reason: str | None = None
    quantity: Count | None = None
    order_number: Text | None = Field(None, alias="orderNumber")


class OcReturnItem(TolerantModel):
    """One returned SKU line (INFERRED)."""

    mf_sku_id: Text | None = _choices("mfSkuId", "MFSKUID")
    seller_sku_id: Text | None = _choices("sellerSkuId", "sellerSku", "sellerSKUID")
    quantity: Count | None = _choices("quantity", "SKUQuantity", "qty")
    condition: str | None = _choices("condition", "itemCondition", "grade")
    sn: str | None = Field(None, alias="SN")


class OcReturnOrder(_HasStatus):
    """A return (RMA) order: the return-order query's row and the return callback's item.

    INFERRED in full. The return number is read from `returnNumber`, `rmaNumber`,
    `returnOrderNumber`, `rmaOrderNumber` or `rmaNo`; when none is present `orderNumber`
    is taken as the return number, because Return 2.0's cancel call names the RMA that way.
    """

    return_number_field: Text | None = _choices(
        "returnNumber", "rmaNumber", "returnOrderNumber", "rmaOrderNumber", "rmaNo"
    )
    order_number: Text | None = Field(None, alias="orderNumber")
    outbound_order_number: Text | None = _choices("outboundOrderNumber", "originalOrderNumber")
    reference_number: Text | None = Field(None, alias="referenceNumber")
    return_status: Text | None = _choices("returnStatus", "rmaStatus")
    create_time: OcDateTime | None = _choices("createTime", "creationTime", "createdTime")
    warehouse_code: str | None = Field(None, alias="warehouseCode")
    tracking_number: Text | None = Field(None, alias="trackingNumber")
    carrier_code: str | None = _choices("carrierCode", "LMCarrierCode", "carrier")
    return_reason: str | None = Field(None, alias="returnReason")
    item_list: NullableList[OcReturnItem] = Field(
        default_factory=list,
        validation_alias=AliasChoices(
            "itemList", "skuList", "items", "returnItemList", "productList"
        ),
        serialization_alias="itemList",
    )

    def _status_candidates(self) -> list[Any]:
        return [self.status, self.return_status]

    @property
    def return_number(self) -> str | None:
        return self.return_number_field or self.order_number

    @property
    def original_order_number(self) -> str | None:
        """The outbound order this return belongs to, when OC says so."""
        if self.outbound_order_number:
            return self.outbound_order_number
        return self.order_number if self.return_number_field else None

    def normalized_status(self) -> ReturnStatus:
        return normalize_return_status(self.raw_status())

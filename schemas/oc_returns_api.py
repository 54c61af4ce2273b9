"""OC's Return 2.0 calls: return orders, return stock, label, cancel RMA / update tracking.

Only the return stock snapshot (POST /3pp/returns/v1/query/stock) is published in full
(oc-api README §6.7); its models follow that page exactly. The other three are INFERRED:

- GET /3pp/returns/v1/query/orders takes query parameters `returnNumber` (repeatable, or
  comma-separated), `orderNumber` (the outbound order), `startTime`/`endTime` (OC datetimes,
  creation window) and `pageNumber`/`pageSize`; its `result` is a page shaped like the stock
  page, holding `returnOrderList[]` of `OcReturnOrder`.
- GET /3pp/returns/v1/query/label takes `returnNumber`; its `result` is `ReturnLabel`.
- POST /3pp/returns/v1/cancel/rma takes `data.orderNumber` (FOUND: the RMA's number) and,
  INFERRED, `operationType` (`CANCEL` | `UPDATE_TRACKING`), `cancelReason`,
  `trackingNumber`, `carrierCode`; it answers the Return 2.0 envelope.

All answers use the Return 2.0 envelope (`Return2Response`).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import AliasChoices, BeforeValidator, Field, TypeAdapter

from schemas.oc_entities import OcReturnOrder
from schemas.oc_envelopes import OcRequest, Return2Response
from schemas.tolerant import (
    Count,
    DecimalNumber,
    NullableList,
    OcDateTime,
    Text,
    TolerantModel,
    format_oc_datetime,
)

RETURN_ORDERS_PATH: Final = "/3pp/returns/v1/query/orders"
RETURN_STOCK_PATH: Final = "/3pp/returns/v1/query/stock"
RETURN_LABEL_PATH: Final = "/3pp/returns/v1/query/label"
RETURN_CANCEL_RMA_PATH: Final = "/3pp/returns/v1/cancel/rma"

RETURN_STOCK_MAX_PAGE_SIZE: Final = 200
"""INFERRED: not published; OC's other SKU pages stop at 200."""
RETURN_STOCK_MAX_IDS: Final = 200
"""INFERRED: ids per return stock request."""
RETURN_ORDERS_MAX_PAGE_SIZE: Final = 200
"""INFERRED: page size of the return-order query."""


def _split_numbers(value: Any) -> Any:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if isinstance(items, list):
        return [part.strip() for item in items for part in str(item).split(",") if part.strip()]
    return value


NumberList = Annotated[list[str], BeforeValidator(_split_numbers)]


class ReturnOrderQuery(TolerantModel):
    """Query parameters of GET /3pp/returns/v1/query/orders (INFERRED)."""

    return_numbers: NumberList = Field(
        default_factory=list,
        validation_alias=AliasChoices("returnNumber", "returnNumbers", "returnNumberList"),
        serialization_alias="returnNumber",
    )
    order_number: Text | None = Field(None, alias="orderNumber")
    start_time: OcDateTime | None = Field(None, alias="startTime")
    end_time: OcDateTime | None = Field(None, alias="endTime")
    page_number: Count = Field(1, alias="pageNumber")
    page_size: Count = Field(50, alias="pageSize")

    def to_query(self) -> list[tuple[str, str]]:
        """Query pairs; `returnNumber` repeats once per number."""
        pairs = [("returnNumber", n) for n in self.return_numbers]
        if self.order_number:
            pairs.append(("orderNumber", self.order_number))
        if self.start_time:
            pairs.append(("startTime", format_oc_datetime(self.start_time)))
        if self.end_time:
            pairs.append(("endTime", format_oc_datetime(self.end_time)))
        pairs += [("pageNumber", str(self.page_number)), ("pageSize", str(self.page_size))]
        return pairs


class _Page(TolerantModel):
    page_number: Count | None = Field(None, alias="pageNumber")
    page_size: Count | None = Field(None, alias="pageSize")
    has_next_page: bool | None = Field(None, alias="hasNextPage")
    total_page: Count | None = Field(None, alias="totalPage")


class ReturnOrderPage(_Page):
    """`result` of the return-order query (INFERRED)."""

    total: Count | None = None
    return_order_list: NullableList[OcReturnOrder] = Field(
        default_factory=list,
        validation_alias=AliasChoices("returnOrderList", "orderList", "records", "list"),
        serialization_alias="returnOrderList",
    )


class ReturnStockQuery(TolerantModel):
    """`data` of POST /3pp/returns/v1/query/stock (FOUND)."""

    service_type: str = Field("SKU", alias="serviceType")
    unique_id_list: NullableList[Text] = Field(default_factory=list, alias="uniqueIdList")
    page_number: Count = Field(1, alias="pageNumber")
    page_size: Count = Field(20, alias="pageSize")


class ReturnStockRow(TolerantModel):
    """One row of `result.inventoryList[]` (FOUND)."""

    unique_id: Text | None = Field(None, alias="uniqueId")
    mf_sku_id: Text | None = Field(None, alias="mfSkuId")
    warehouse_code: str | None = Field(None, alias="warehouseCode")
    available: Count | None = None
    reserved_allocated: Count | None = Field(None, alias="reservedAllocated")
    reserved_hold: Count | None = Field(None, alias="reservedHold")
    reserved_vas: Count | None = Field(None, alias="reservedVAS")
    unfulfillable: Count | None = None
    suspend: Count | None = None
    length: DecimalNumber | None = None
    width: DecimalNumber | None = None
    height: DecimalNumber | None = None
    length_unit: str | None = Field(None, alias="lengthUnit")
    weight: DecimalNumber | None = None
    weight_unit: str | None = Field(None, alias="weightUnit")
    put_away_time: OcDateTime | None = Field(None, alias="putAwayTime")


class ReturnStockPage(_Page):
    """`result` of the return stock snapshot (FOUND)."""

    service_type: str | None = Field(None, alias="serviceType")
    inventory_list: NullableList[ReturnStockRow] = Field(
        default_factory=list, alias="inventoryList"
    )
    request_count: Count | None = Field(None, alias="requestCount")
    success_count: Count | None = Field(None, alias="successCount")
    failed_count: Count | None = Field(None, alias="failedCount")
    failed_list: NullableList[Text] = Field(default_factory=list, alias="failedList")


class ReturnLabelQuery(TolerantModel):
    """Query parameters of GET /3pp/returns/v1/query/label (INFERRED)."""

    return_number: Text = Field(alias="returnNumber")

    def to_query(self) -> list[tuple[str, str]]:
        return [("returnNumber", self.return_number)]


class ReturnLabel(TolerantModel):
    """`result` of the label query (INFERRED)."""

    return_number: Text | None = Field(None, alias="returnNumber")
    tracking_number: Text | None = Field(None, alias="trackingNumber")
    carrier_code: str | None = Field(None, alias="carrierCode")
    label_format: str | None = Field(None, alias="labelFormat")
    label_url: str | None = Field(None, alias="labelUrl")
    label_data: str | None = Field(None, alias="labelData", description="Base64 of the file.")


class CancelRmaData(TolerantModel):
    """`data` of POST /3pp/returns/v1/cancel/rma. Only `orderNumber` is FOUND."""

    order_number: Text = Field(alias="orderNumber", description="The RMA's number.")
    operation_type: str | None = Field(None, alias="operationType")
    cancel_reason: str | None = Field(None, alias="cancelReason")
    tracking_number: Text | None = Field(None, alias="trackingNumber")
    carrier_code: str | None = Field(None, alias="carrierCode")

    def is_tracking_update(self) -> bool:
        """An update of the return's tracking rather than a cancellation."""
        if self.operation_type:
            return "track" in self.operation_type.casefold()
        return bool(self.tracking_number)


class CancelRmaResult(TolerantModel):
    """`result` of the cancel/update call (INFERRED)."""

    order_number: Text | None = Field(None, alias="orderNumber")
    status: Text | None = None


ReturnStockRequest = OcRequest[ReturnStockQuery]
CancelRmaRequest = OcRequest[CancelRmaData]
ReturnOrdersResponse = Return2Response[ReturnOrderPage]
ReturnStockResponse = Return2Response[ReturnStockPage]
ReturnLabelResponse = Return2Response[ReturnLabel]
CancelRmaResponse = Return2Response[CancelRmaResult]

RETURN_ORDERS_RESPONSE: Final = TypeAdapter(ReturnOrdersResponse)
RETURN_STOCK_RESPONSE: Final = TypeAdapter(ReturnStockResponse)
RETURN_LABEL_RESPONSE: Final = TypeAdapter(ReturnLabelResponse)
CANCEL_RMA_RESPONSE: Final = TypeAdapter(CancelRmaResponse)
RETURN2_RESPONSE: Final = TypeAdapter(Return2Response[Any])


def parse_return_orders_response(body: bytes | str) -> ReturnOrdersResponse:
    return RETURN_ORDERS_RESPONSE.validate_json(body)


def parse_return_stock_response(body: bytes | str) -> ReturnStockResponse:
    return RETURN_STOCK_RESPONSE.validate_json(body)


def parse_return_label_response(body: bytes | str) -> ReturnLabelResponse:
    return RETURN_LABEL_RESPONSE.validate_json(body)


def parse_cancel_rma_response(body: bytes | str) -> CancelRmaResponse:
    return CANCEL_RMA_RESPONSE.validate_json(body)


def parse_return2_response(body: bytes | str) -> Return2Response[Any]:
    """Any Return 2.0 answer with `result` left as plain JSON."""
    return RETURN2_RESPONSE.validate_json(body)

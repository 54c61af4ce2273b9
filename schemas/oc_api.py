"""OC's API as the gateway calls it: paths, limits, and tolerant request/response models.

Covers Outbound Order Query v2, StockSnapshot v2 and GetStockMovement, and re-exports
OAuth (`schemas.oc_oauth`), both envelopes (`schemas.oc_envelopes`) and the Return 2.0
calls (`schemas.oc_returns_api`), so `schemas.oc_api` is the one import a client needs.
Facts come from oc-api README §2-§6; values marked INFERRED there are INFERRED here.
Every response model wraps `OcResponse` (classic) or `Return2Response` (Return 2.0); check
`is_failure()` on each answer, because OC reports errors inside HTTP 200.

Requests serialise with `to_request_json()` (OC's key spelling, `+0800` datetimes, None
left out; sign exactly those bytes); `to_oc_json()` re-serialises a parsed payload as it
came. The simulator parses the same models, so both ends agree on the wire.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from pydantic import AliasChoices, Field, TypeAdapter, model_validator

from schemas.oc_entities import OcOutboundOrder, OcStockRow
from schemas.oc_envelopes import OcError, OcRequest, OcResponse, Return2Response
from schemas.oc_oauth import (
    AuthorizeRequest,
    TokenRequest,
    TokenResponse,
    parse_token_response,
)
from schemas.oc_returns_api import (
    RETURN_CANCEL_RMA_PATH,
    RETURN_LABEL_PATH,
    RETURN_ORDERS_MAX_PAGE_SIZE,
    RETURN_ORDERS_PATH,
    RETURN_STOCK_MAX_IDS,
    RETURN_STOCK_MAX_PAGE_SIZE,
    RETURN_STOCK_PATH,
    CancelRmaData,
    CancelRmaRequest,
    CancelRmaResponse,
    CancelRmaResult,
    ReturnLabel,
    ReturnLabelQuery,
    ReturnLabelResponse,
    ReturnOrderPage,
    ReturnOrderQuery,
    ReturnOrdersResponse,
    ReturnStockPage,
    ReturnStockQuery,
    ReturnStockRequest,
    ReturnStockResponse,
    ReturnStockRow,
    parse_cancel_rma_response,
    parse_return2_response,
    parse_return_label_response,
    parse_return_orders_response,
    parse_return_stock_response,
)
from schemas.tolerant import (
    Count,
    ListOrOne,
    NullableList,
    OcDateTime,
    Text,
    TolerantModel,
)

__all__ = [
    "ACCESS_TOKEN_TTL_S",
    "BUSINESS_PREFIX",
    "OAUTH_AUTHORIZE_PATH",
    "OAUTH_TOKEN_PATH",
    "OUTBOUND_QUERY_MAX_RESULTS",
    "OUTBOUND_QUERY_MAX_WINDOW",
    "OUTBOUND_QUERY_PATH",
    "REFRESH_TOKEN_TTL",
    "RETURN_CANCEL_RMA_PATH",
    "RETURN_LABEL_PATH",
    "RETURN_ORDERS_MAX_PAGE_SIZE",
    "RETURN_ORDERS_PATH",
    "RETURN_STOCK_MAX_IDS",
    "RETURN_STOCK_MAX_PAGE_SIZE",
    "RETURN_STOCK_PATH",
    "SERVICE_LIST_PATH",
    "STOCK_MOVEMENT_MAX_AGE",
    "STOCK_MOVEMENT_MAX_WINDOW",
    "STOCK_MOVEMENT_PATH",
    "STOCK_MOVEMENT_SKUS_PER_CALL",
    "STOCK_SNAPSHOT_MAX_PAGE_SIZE",
    "STOCK_SNAPSHOT_PATH",
    "AuthorizeRequest",
    "CancelRmaData",
    "CancelRmaRequest",
    "CancelRmaResponse",
    "CancelRmaResult",
    "EbayOrderRef",
    "OcError",
    "OcRequest",
    "OcResponse",
    "OrderNumberRef",
    "OutboundQuery",
    "OutboundQueryRequest",
    "OutboundQueryResponse",
    "ReferenceNumberRef",
    "Return2Response",
    "ReturnLabel",
    "ReturnLabelQuery",
    "ReturnLabelResponse",
    "ReturnOrderPage",
    "ReturnOrderQuery",
    "ReturnOrdersResponse",
    "ReturnStockPage",
    "ReturnStockQuery",
    "ReturnStockRequest",
    "ReturnStockResponse",
    "ReturnStockRow",
    "ServiceRegionRef",
    "SkuRef",
    "StockMovement",
    "StockMovementBucket",
    "StockMovementQuery",
    "StockMovementRegion",
    "StockMovementRequest",
    "StockMovementResponse",
    "StockMovementSku",
    "StockSnapshotPage",
    "StockSnapshotQuery",
    "StockSnapshotRequest",
    "StockSnapshotResponse",
    "TokenRequest",
    "TokenResponse",
    "parse_cancel_rma_response",
    "parse_classic_response",
    "parse_outbound_query_response",
    "parse_return2_response",
    "parse_return_label_response",
    "parse_return_orders_response",
    "parse_return_stock_response",
    "parse_stock_movement_response",
    "parse_stock_snapshot_response",
    "parse_token_response",
]

# --- hosts, paths and limits (oc-api README §1, §4.4, §5) -------------------------------
BUSINESS_PREFIX: Final = "/openapi"
"""Business paths below sit under this prefix; OAuth paths do not."""
OAUTH_AUTHORIZE_PATH: Final = "/oauth/authorize"
OAUTH_TOKEN_PATH: Final = "/oauth/token"
OUTBOUND_QUERY_PATH: Final = "/3pp/outbound/v2/query"
STOCK_SNAPSHOT_PATH: Final = "/3pp/inventory/v2/snapshot"
STOCK_MOVEMENT_PATH: Final = "/3pp/inventory/v1/movement"
SERVICE_LIST_PATH: Final = "/3pp/base/v1/service"

ACCESS_TOKEN_TTL_S: Final = 3600
REFRESH_TOKEN_TTL: Final = timedelta(days=365)
OUTBOUND_QUERY_MAX_RESULTS: Final = 1000
OUTBOUND_QUERY_MAX_WINDOW: Final = timedelta(days=7)
"""Not published by OC; the simulator enforces 7 days, like OC's other time windows."""
STOCK_SNAPSHOT_MAX_PAGE_SIZE: Final = 200
STOCK_MOVEMENT_MAX_WINDOW: Final = timedelta(days=7)
STOCK_MOVEMENT_MAX_AGE: Final = timedelta(days=365)
STOCK_MOVEMENT_SKUS_PER_CALL: Final = 50
"""What the public client sends per call (CODE); OC's own limit is not published."""


# --- Outbound Order Query v2 (§6.2) -----------------------------------------------------
class OrderNumberRef(TolerantModel):
    order_number: Text = Field(alias="orderNumber")


class ReferenceNumberRef(TolerantModel):
    reference_number: Text = Field(alias="referenceNumber")


class EbayOrderRef(TolerantModel):
    ebay_id: Text | None = Field(None, alias="ebayId")
    ebay_order_id: Text | None = Field(None, alias="ebayOrderId")


class OutboundQuery(TolerantModel):
    """Look orders up by number lists and/or a creation-time window."""

    order_number_list: NullableList[OrderNumberRef] = Field(
        default_factory=list, alias="orderNumberList"
    )
    reference_number_list: NullableList[ReferenceNumberRef] = Field(
        default_factory=list, alias="referenceNumberList"
    )
    ebay_order_id_list: NullableList[EbayOrderRef] = Field(
        default_factory=list, alias="ebayOrderIdList"
    )
    start_time: OcDateTime | None = Field(None, alias="startTime")
    end_time: OcDateTime | None = Field(None, alias="endTime")

    @classmethod
    def for_orders(cls, order_numbers: list[str]) -> OutboundQuery:
        return cls(order_number_list=[OrderNumberRef(order_number=n) for n in order_numbers])


OutboundQueryRequest = OcRequest[OutboundQuery]
OutboundQueryResponse = OcResponse[ListOrOne[OcOutboundOrder]]


# --- StockSnapshot v2 (§6.3) ------------------------------------------------------------
def _sku_ref(value: Any) -> Any:
    return {"mfSkuId": value} if isinstance(value, str) else value


class SkuRef(TolerantModel):
    """A SKU filter entry. OC's item shape is not published (INFERRED: `{mfSkuId}` as in
    GetStockMovement); `MFSKUID`/`mfskuid` and a bare string are read too."""

    mf_sku_id: Text = Field(alias="mfSkuId")

    @model_validator(mode="before")
    @classmethod
    def _bare_string(cls, value: Any) -> Any:
        return _sku_ref(value)


class ServiceRegionRef(TolerantModel):
    service_region: str = Field(alias="serviceRegion")


class StockSnapshotQuery(TolerantModel):
    page_number: Count = Field(1, alias="pageNumber")
    page_size: Count = Field(STOCK_SNAPSHOT_MAX_PAGE_SIZE, alias="pageSize")
    sku_list: NullableList[SkuRef] = Field(default_factory=list, alias="skuList")
    service_region_list: NullableList[ServiceRegionRef] = Field(
        default_factory=list, alias="serviceRegionList"
    )


class StockSnapshotPage(TolerantModel):
    """`data` of a snapshot answer. The last page is the one with fewer than pageSize rows
    (OC publishes no total count)."""

    sku_list: NullableList[OcStockRow] = Field(default_factory=list, alias="SKUList")


StockSnapshotRequest = OcRequest[StockSnapshotQuery]
StockSnapshotResponse = OcResponse[StockSnapshotPage]


# --- GetStockMovement (§6.4) ------------------------------------------------------------
class StockMovementQuery(TolerantModel):
    start_time: OcDateTime | None = Field(None, alias="startTime")
    end_time: OcDateTime | None = Field(None, alias="endTime")
    mf_sku_list: NullableList[SkuRef] = Field(default_factory=list, alias="mfSkuList")


class StockMovement(TolerantModel):
    """One ledger line. OC spells the id `moventmentID`; `movementID` is read too."""

    movement_id: Text | None = Field(
        None,
        validation_alias=AliasChoices("moventmentID", "movementID"),
        serialization_alias="moventmentID",
    )
    quantity: Count | None = None
    actual_count: Count | None = Field(None, alias="actualCount")
    reason: str | None = None
    order_number: Text | None = Field(None, alias="orderNumber")
    update_time: OcDateTime | None = Field(None, alias="updateTime")

    def reason_code(self) -> str | None:
        """`PAC` of `PAC=Put Away Complete`."""
        return self.reason.split("=", 1)[0].strip() if self.reason else None


class StockMovementBucket(TolerantModel):
    inventory_status: str | None = Field(None, alias="inventoryStatus")
    movement_list: NullableList[StockMovement] = Field(default_factory=list, alias="movementList")


class StockMovementRegion(TolerantModel):
    service_region: str | None = Field(None, alias="serviceRegion")
    inventory_list: NullableList[StockMovementBucket] = Field(
        default_factory=list, alias="inventoryList"
    )


class StockMovementSku(TolerantModel):
    mf_sku_id: Text = Field(alias="MFSKUID")
    seller_sku_id: Text | None = Field(None, alias="sellerSkuId")
    service_region_list: NullableList[StockMovementRegion] = Field(
        default_factory=list, alias="serviceRegionList"
    )


StockMovementRequest = OcRequest[StockMovementQuery]
StockMovementResponse = OcResponse[ListOrOne[StockMovementSku]]

# --- parsing raw bytes (one adapter per answer, built once) -----------------------------
OUTBOUND_QUERY_RESPONSE: Final = TypeAdapter(OutboundQueryResponse)
STOCK_SNAPSHOT_RESPONSE: Final = TypeAdapter(StockSnapshotResponse)
STOCK_MOVEMENT_RESPONSE: Final = TypeAdapter(StockMovementResponse)
COMMAND_RESPONSE: Final = TypeAdapter(OcResponse[Any])


def parse_outbound_query_response(body: bytes | str) -> OutboundQueryResponse:
    return OUTBOUND_QUERY_RESPONSE.validate_json(body)


def parse_stock_snapshot_response(body: bytes | str) -> StockSnapshotResponse:
    return STOCK_SNAPSHOT_RESPONSE.validate_json(body)


def parse_stock_movement_response(body: bytes | str) -> StockMovementResponse:
    return STOCK_MOVEMENT_RESPONSE.validate_json(body)


def parse_classic_response(body: bytes | str) -> OcResponse[Any]:
    """Any classic answer with `data` left as plain JSON (errors, commands, probes)."""
    return COMMAND_RESPONSE.validate_json(body)

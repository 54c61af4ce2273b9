"""World records -> OC's JSON (pure). Callbacks and look-up answers share these renderers,
so a callback and a later query describe an entity the same way.

Times are written in OC's format at OC's own offset (`2024-06-17T12:00:00+0800`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from gateway.simulator.entities import (
    REGIONS,
    Movement,
    Order,
    ReturnOrder,
    ReturnStockCell,
    Sku,
    StockCell,
)
from schemas.tolerant import OC_TIMEZONE, format_oc_datetime


def oc_time(moment: datetime) -> str:
    return format_oc_datetime(moment.astimezone(OC_TIMEZONE))


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def order_json(order: Order, *, with_consignee: bool) -> dict[str, Any]:
    """An order as Outbound Order Query v2 returns it (plus the INFERRED status keys)."""
    lines = [
        {"MFSKUID": line.mf_sku_id, "SKUQuantity": line.quantity, "SN": ",".join(line.serials)}
        for line in order.lines
    ]
    parcels: list[dict[str, Any]] = []
    if order.parcel is not None:
        parcels.append(
            {
                "orderNumber": order.order_number,
                "trackingNumber": order.parcel.tracking_number,
                "LMCarrierCode": order.parcel.carrier_code,
                "LMCarrierName": order.parcel.carrier_code,
                "chargeableWeight": f"{order.parcel.weight_g}.0000",
                "chargeableWeightUnit": "g",
                "feeAmount": float(order.parcel.fee),
                "feeAmountCurrency": order.parcel.currency,
                "SKUList": lines,
            }
        )
    body: dict[str, Any] = {
        "orderNumber": order.order_number,
        "autoFulfillmentEF": order.auto_fulfillment_ef,
        "orderCreationTime": oc_time(order.created_at),
        "referenceNumber": order.reference_number,
        "serviceRegion": order.region,
        "ebayId": order.ebay_id,
        "ebayOrderId": order.ebay_order_id,
        "shippingServiceCode": order.shipping_service_code,
        "status": order.status,
        "statusTime": oc_time(order.status_time),
        "trackingNumberList": parcels,
    }
    if with_consignee:
        person = order.consignee
        body |= {
            "consigneeName": person.name,
            "companyName": person.company,
            "consigneeAddress1": person.address1,
            "consigneeAddress2": person.address2,
            "houseNumber": person.house_number,
            "consigneeCity": person.city,
            "consigneeProvinceOrState": person.province_or_state,
            "consigneeZipCode": person.zip_code,
            "consigneeCountryCode": person.country_code,
            "consigneePhone": person.phone,
            "consigneeEmail": person.email,
        }
    return body


def stock_row_json(mf_sku_id: str, region: str, cell: StockCell) -> dict[str, Any]:
    """A StockSnapshot v2 row."""
    return {
        "MFSKUID": mf_sku_id,
        "serviceRegion": region,
        "available": cell.available,
        "inTransit": cell.in_transit,
        "received": cell.received,
        "reservedAllocated": cell.reserved_allocated,
        "reservedHold": cell.reserved_hold,
        "reservedVAS": cell.reserved_vas,
        "suspend": cell.suspend,
        "unfulfillable": cell.unfulfillable,
    }


def inventory_item_json(
    mf_sku_id: str,
    region: str,
    cell: StockCell,
    *,
    reason: str,
    quantity: int,
    order_number: str | None,
    at: datetime,
) -> dict[str, Any]:
    """An inventory callback's item (INFERRED): the row after the change, and the change."""
    item = stock_row_json(mf_sku_id, region, cell)
    item |= {"inventoryStatus": "AVL", "reason": reason, "quantity": quantity}
    if order_number:
        item["orderNumber"] = order_number
    item["updateTime"] = oc_time(at)
    return item


def return_json(ret: ReturnOrder, skus: Mapping[str, Sku]) -> dict[str, Any]:
    """A return order (INFERRED shape, see schemas.oc_entities.OcReturnOrder)."""
    return {
        "returnNumber": ret.return_number,
        "orderNumber": ret.order_number,
        "status": ret.status,
        "statusTime": oc_time(ret.status_time),
        "createTime": oc_time(ret.created_at),
        "warehouseCode": ret.warehouse_code,
        "serviceRegion": ret.region,
        "trackingNumber": ret.tracking_number,
        "carrierCode": ret.carrier_code,
        "returnReason": ret.reason,
        "itemList": [
            {
                "mfSkuId": line.mf_sku_id,
                "sellerSkuId": skus[line.mf_sku_id].seller_sku_id,
                "quantity": line.quantity,
                "condition": line.condition,
            }
            for line in ret.lines
        ],
    }


class Measured(Protocol):
    """Dimensions and weight, of a SKU's master data or of one returned item."""

    @property
    def length_cm(self) -> int: ...
    @property
    def width_cm(self) -> int: ...
    @property
    def height_cm(self) -> int: ...
    @property
    def weight_g(self) -> int: ...


def return_stock_row_json(
    unique_id: str, mf_sku_id: str, warehouse: str, cell: ReturnStockCell, measured: Measured
) -> dict[str, Any]:
    """A row of the return stock snapshot: every field of OC's page (FOUND shape)."""
    return {
        "uniqueId": unique_id,
        "mfSkuId": mf_sku_id,
        "warehouseCode": warehouse,
        "available": cell.available,
        "reservedAllocated": cell.reserved_allocated,
        "reservedHold": cell.reserved_hold,
        "reservedVAS": cell.reserved_vas,
        "unfulfillable": cell.unfulfillable,
        "suspend": cell.suspend,
        "length": measured.length_cm,
        "width": measured.width_cm,
        "height": measured.height_cm,
        "lengthUnit": "cm",
        "weight": measured.weight_g,
        "weightUnit": "g",
        "putAwayTime": oc_time(cell.put_away_time) if cell.put_away_time else None,
    }


def movements_json(movements: Iterable[Movement], skus: Mapping[str, Sku]) -> list[dict[str, Any]]:
    """GetStockMovement's nesting: SKU -> region -> stock bucket -> movement lines."""
    tree: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {}
    for m in sorted(movements, key=lambda m: (m.mf_sku_id, m.region, m.bucket, m.at)):
        lines = tree.setdefault(m.mf_sku_id, {}).setdefault(m.region, {}).setdefault(m.bucket, [])
        lines.append(
            {
                "moventmentID": m.movement_id,
                "quantity": m.quantity,
                "actualCount": m.actual_count,
                "reason": m.reason,
                "orderNumber": m.order_number or "",
                "updateTime": oc_time(m.at),
            }
        )
    return [
        {
            "MFSKUID": sku,
            "sellerSkuId": skus[sku].seller_sku_id,
            "serviceRegionList": [
                {
                    "serviceRegion": region,
                    "inventoryList": [
                        {"inventoryStatus": bucket, "movementList": lines}
                        for bucket, lines in buckets.items()
                    ],
                }
                for region, buckets in regions.items()
            ],
        }
        for sku, regions in tree.items()
    ]


def service_list_json() -> list[dict[str, Any]]:
    """GetServiceList's data: one entry per service region."""
    return [
        {
            "serviceRegion": region.name,
            "productList": [
                {
                    "shippingServiceCode": f"{region.country}Dom_{carrier}",
                    "shippingServiceNameList": [
                        {
                            "applyPlatform": "eBay",
                            "language": "en",
                            "shippingServiceName": f"{carrier} standard",
                        }
                    ],
                }
                for carrier in region.carriers
            ],
        }
        for region in REGIONS.values()
    ]


def callback_body(message_id: str, at: datetime, items: list[dict[str, Any]]) -> bytes:
    """The INFERRED callback envelope around `items`."""
    return dumps({"messageId": message_id, "timestamp": epoch_ms(at), "data": items})

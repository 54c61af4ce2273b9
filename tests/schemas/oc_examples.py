"""OC's example payloads (oc-api README §3, §4, §6), copied verbatim as JSON text, and the
order status values OC shows (§3.1).

Tests parse each one with our models and write it back; the result must equal the input.
"""

from __future__ import annotations

from typing import Final

from schemas.events import OrderStatus

OUTBOUND_CALLBACK: Final = """{
  "messageId": "5b6c1f0e-sim", "timestamp": 1718600000000,
  "data": [{"orderNumber": "OCO0000011225074GB", "referenceNumber": "TEST_123456789",
    "serviceRegion": "UK", "orderCreationTime": "2022-05-17T16:00:16+0800",
    "trackingNumberList": [{"orderNumber": "OCO0000011225074GB",
      "trackingNumber": "ZDBBXK0357800000", "LMCarrierCode": "XDP", "LMCarrierName": "XDP",
      "chargeableWeight": "11000.0000", "chargeableWeightUnit": "g", "feeAmount": 19,
      "feeAmountCurrency": "GBP",
      "SKUList": [{"MFSKUID": "OC0000000675549", "SKUQuantity": 2, "SN": "A01,A02"}]}]}]
}"""

CALLBACK_ANSWER: Final = (
    '{"code":0,"success":true,"message":"success","messageId":"<echo>","errors":[]}'
)

TOKEN_RESPONSE: Final = (
    '{"access_token":"at-sim-001","token_type":"bearer","expires_in":3600,'
    '"refresh_token":"rt-sim-001"}'
)

CLASSIC_ERROR: Final = (
    '{"code":3,"errors":[{"code":"3A0529","message":"Query fail. Because inboundNumber '
    '[string] doesnt exists. Please check your inboundNumber and try again."}],'
    '"messageId":"string","success":false}'
)

OUTBOUND_QUERY_REQUEST: Final = """{"apiVersion":"2.0","messageId":"m-1","timestamp":1588233847001,
 "data":{"orderNumberList":[{"orderNumber":"OCO2000009385032GB"}],"referenceNumberList":[],
 "ebayOrderIdList":[],"startTime":"2023-04-21T20:09:57+0800","endTime":"2023-04-25T20:09:57+0800"}}"""

OUTBOUND_QUERY_REQUEST_DOC: Final = """{"apiVersion": "2.0", "messageId": "20200430040406976",
 "timestamp": 1588233847001,
 "data": {"ebayOrderIdList": [{"ebayId": "25-11158-23993", "ebayOrderId": "25-11158-23993"}],
  "orderNumberList": [{"orderNumber": "OCO2000009385032GB"}],
  "referenceNumberList": [{"referenceNumber": "25daq"}],
  "startTime": "2023-04-21T20:09:57+0800", "endTime": "2023-04-25T20:09:57+0800"}}"""

OUTBOUND_QUERY_RESPONSE: Final = """{"code":0,"success":true,"messageId":"m-1","errors":[],
 "data":[{"orderNumber":"OCO0000011225074GB","autoFulfillmentEF":false,
   "orderCreationTime":"2022-05-17T16:00:16+0800","referenceNumber":"","serviceRegion":"UK",
   "trackingNumberList":[{"orderNumber":"OCO0000011225074GB","trackingNumber":"ZDBBXK0357800000",
     "LMCarrierCode":"XDP","LMCarrierName":"XDP","chargeableWeight":"11000.0000",
     "chargeableWeightUnit":"g","feeAmount":19,"feeAmountCurrency":"GBP",
     "SKUList":[{"MFSKUID":"OC0000000675549","SKUQuantity":2,"SN":"A01,A02"}]}]}]}"""

STOCK_SNAPSHOT_REQUEST: Final = """{"messageId":"m-2","timestamp":1718600000000,
 "data":{"pageNumber":1,"pageSize":200,"skuList":[],"serviceRegionList":[{"serviceRegion":"UK"}]}}"""

STOCK_SNAPSHOT_RESPONSE: Final = """{"code":0,"success":true,"data":{"SKUList":[
 {"MFSKUID":"OC0000000675549","serviceRegion":"UK","available":40,"inTransit":0,"received":0,
  "reservedAllocated":2,"reservedHold":0,"reservedVAS":0,"suspend":0,"unfulfillable":1}]}}"""

STOCK_MOVEMENT_REQUEST: Final = """{"messageId":"m-3","timestamp":1718600000000,
 "data":{"startTime":"2024-07-10T00:00:00+0000","endTime":"2024-07-16T23:59:59+0000",
 "mfSkuList":[{"mfSkuId":"OC1"}]}}"""

STOCK_MOVEMENT_RESPONSE: Final = """{"code":0,"message":"成功","success":true,"data":[
 {"MFSKUID":"OC1","sellerSkuId":"S1","serviceRegionList":[{"serviceRegion":"DE",
  "inventoryList":[{"inventoryStatus":"AVL","movementList":[{"moventmentID":"m1",
   "quantity":-20,"actualCount":0,"reason":"OEH","orderNumber":"OCO…",
   "updateTime":"2024-07-15T19:48:37+0800"}]}]}]}]}"""

STOCK_MOVEMENT_ERROR: Final = (
    '{"code":3,"success":false,"message":"GetStockMovement: Query timeslot is only valid for '
    'the last 12 months.","errors":[]}'
)

RETURN_STOCK_REQUEST: Final = """{"messageId":"m-4","data":{"serviceType":"SKU",
 "uniqueIdList":["OC0000000675549"]}}"""

RETURN_STOCK_REQUEST_DOC: Final = """{"messageId": "{{messageId}}", "data": {"serviceType": "SKU",
 "uniqueIdList": ["DE01UC", "DE01UC001", "DE01UC002", "DE01UC003", "DE01UC004", "asdfg12345"],
 "pageNumber": 1, "pageSize": 20}}"""

RETURN_STOCK_RESPONSE: Final = """{"requestId":"r-1","success":true,"hasBusinessException":false,
"errorCode":null,"errorMsg":null,"message":"OK","result":{"pageNumber":1,"pageSize":20,
"hasNextPage":false,"totalPage":1,"serviceType":"SKU","inventoryList":[{"uniqueId":"DE01UC001",
"mfSkuId":"OC0000000675549","warehouseCode":"DE01","available":3,"reservedAllocated":1,
"reservedHold":0,"reservedVAS":0,"unfulfillable":1,"suspend":0,"length":20,"width":15,
"height":8,"lengthUnit":"cm","weight":450,"weightUnit":"g",
"putAwayTime":"2026-06-10T09:30:00+0800"}],"requestCount":6,"successCount":5,"failedCount":1,
"failedList":["asdfg12345"]},"isFallback":false}"""

CANCEL_RMA_REQUEST: Final = """{"messageId":"{{messageId}}","data":{"orderNumber":"RMA0001"}}"""

# The outbound order status values OC shows (oc-api README §3.1), and what each becomes.
ORDER_STATUS_VALUES: Final[list[tuple[str, OrderStatus]]] = [
    ("Draft", "created"),
    ("Submitted", "created"),
    ("Accepted", "allocated"),
    ("Create picking task", "picking"),
    ("Picked", "picking"),
    ("Packed", "packed"),
    ("Outbound", "shipped"),
    ("In-delivery", "shipped"),
    ("Delivered", "delivered"),
    ("Exception", "exception"),
    ("Undeliverable return", "exception"),
    ("failed", "exception"),
    ("Cancelled", "cancelled"),
]

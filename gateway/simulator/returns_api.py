"""OC's Return 2.0 calls over the simulated world (pure handlers).

The return stock snapshot follows OC's published page, and answers the ids of its example
request (documented.py) as the page shows; the other three follow the INFERRED shapes in
schemas/oc_returns_api.py. INFERRED limits: page size and ids per
request at most 200.
"""

from __future__ import annotations

import base64
import math
from typing import Any, Final

from gateway.simulator.answers import Answer, Fail, Ok
from gateway.simulator.api import Call, parse, parse_query
from gateway.simulator.data import World
from gateway.simulator.payloads import return_json, return_stock_row_json
from schemas.oc_api import (
    RETURN_ORDERS_MAX_PAGE_SIZE,
    RETURN_STOCK_MAX_IDS,
    RETURN_STOCK_MAX_PAGE_SIZE,
    CancelRmaRequest,
    ReturnLabelQuery,
    ReturnOrderQuery,
    ReturnStockRequest,
)

# A tiny but well-formed one-page PDF, standing in for a shipping label.
_LABEL_PDF: Final = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 288 432]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def _page(total: int, number: int, size: int) -> dict[str, Any]:
    pages = max(1, math.ceil(total / size))
    return {
        "pageNumber": number,
        "pageSize": size,
        "hasNextPage": number < pages,
        "totalPage": pages,
    }


def return_orders(world: World, call: Call) -> Answer:
    query = parse_query(ReturnOrderQuery, call.query)
    asked = len(query.return_numbers)
    if not 1 <= query.page_size <= RETURN_ORDERS_MAX_PAGE_SIZE:
        return Fail("limit_exceeded", "pageSize must be between 1 and 200", ids=asked)
    if query.page_number < 1:
        return Fail("bad_request", "pageNumber must be at least 1", ids=asked)
    if not (asked or query.order_number or query.start_time or query.end_time):
        return Fail("bad_request", "returnNumber, orderNumber or startTime/endTime is required")
    found = world.returns_matching(
        query.return_numbers, query.order_number, query.start_time, query.end_time
    )
    first = (query.page_number - 1) * query.page_size
    page = found[first : first + query.page_size]
    result = _page(len(found), query.page_number, query.page_size)
    result |= {"total": len(found), "returnOrderList": [return_json(r, world.skus) for r in page]}
    return Ok(result, ids=asked)


def return_stock(world: World, call: Call) -> Answer:
    query = parse(ReturnStockRequest, call.body).data
    ids = query.unique_id_list
    asked = len(ids)
    if query.service_type.upper() != "SKU":
        return Fail("bad_request", f"serviceType {query.service_type} is not supported", asked)
    if not 1 <= query.page_size <= RETURN_STOCK_MAX_PAGE_SIZE:
        return Fail("limit_exceeded", "pageSize must be between 1 and 200", asked, asked)
    if query.page_number < 1:
        return Fail("bad_request", "pageNumber must be at least 1", asked, asked)
    if asked > RETURN_STOCK_MAX_IDS:
        return Fail("limit_exceeded", "uniqueIdList cannot exceed 200 ids", asked, asked)
    rows, failed = world.return_stock_rows(ids)
    first = (query.page_number - 1) * query.page_size
    page = rows[first : first + query.page_size]
    result = _page(len(rows), query.page_number, query.page_size)
    result |= {
        "serviceType": query.service_type,
        "inventoryList": [return_stock_row_json(*row) for row in page],
        "requestCount": asked,
        "successCount": asked - len(failed),
        "failedCount": len(failed),
        "failedList": failed,
    }
    return Ok(result, ids=asked, skus=asked)


def return_label(world: World, call: Call) -> Answer:
    query = parse_query(ReturnLabelQuery, call.query)
    ret = world.returns.get(query.return_number)
    if ret is None:
        return Fail("not_found", f"Return order {query.return_number} does not exist", ids=1)
    label = {
        "returnNumber": ret.return_number,
        "trackingNumber": ret.tracking_number,
        "carrierCode": ret.carrier_code,
        "labelFormat": "PDF",
        "labelData": base64.b64encode(_LABEL_PDF).decode(),
    }
    return Ok(label, ids=1)


def cancel_rma(world: World, call: Call) -> Answer:
    data = parse(CancelRmaRequest, call.body).data
    ret = world.returns.get(data.order_number)
    if ret is None:
        return Fail("not_found", f"Return order {data.order_number} does not exist", ids=1)
    if data.is_tracking_update():
        if ret.is_final:
            return Fail("conflict", f"Return order is {ret.status}; tracking is closed", ids=1)
        ret.tracking_number = data.tracking_number or ret.tracking_number
        ret.carrier_code = data.carrier_code or ret.carrier_code
    else:
        if ret.status != "CREATED":
            return Fail("conflict", f"Return order in status {ret.status} cannot be cancelled", 1)
        ret.status, ret.status_time = "CANCELLED", world.now_after(ret.status_time)
        world.open_returns.remove(ret.return_number)
    return Ok({"orderNumber": ret.return_number, "status": ret.status}, ids=1)

"""OC's classic look-ups over the simulated world, with OC's limits (pure handlers).

Each handler takes the world and the request (`Call`) and returns an `Ok` or `Fail`; the
app wraps it in OC's envelope. Limits: Outbound Order Query v2 at most 1000 results and a
7-day creation window; StockSnapshot v2 at most 200 SKUs and 200 rows a page;
GetStockMovement a window of at most 7 days within the last year (and, INFERRED, at most
200 SKUs a call).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from gateway.simulator.answers import Answer, Fail, Ok
from gateway.simulator.data import World
from gateway.simulator.payloads import movements_json, order_json, service_list_json, stock_row_json
from schemas.oc_api import (
    OUTBOUND_QUERY_MAX_RESULTS,
    OUTBOUND_QUERY_MAX_WINDOW,
    STOCK_MOVEMENT_MAX_AGE,
    STOCK_MOVEMENT_MAX_WINDOW,
    STOCK_SNAPSHOT_MAX_PAGE_SIZE,
    OutboundQueryRequest,
    StockMovementRequest,
    StockSnapshotRequest,
)

M = TypeVar("M", bound=BaseModel)
MAX_SKUS_PER_CALL = 200


@dataclass(frozen=True, slots=True)
class Call:
    """One business request as the handlers see it."""

    body: bytes
    now: datetime
    query: Mapping[str, list[str]] = field(default_factory=dict)
    max_ids: int = OUTBOUND_QUERY_MAX_RESULTS
    """Most order numbers one Outbound Order Query v2 may name (FaultSettings.order_list_limit)."""


class BadRequest(Exception):
    """The request does not parse; answered as OC's parameter error."""


def _bad_request(exc: ValidationError) -> BadRequest:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return BadRequest(f"Request parameter error: {where}: {first['msg']}")


def parse(model: type[M], body: bytes) -> M:
    """A JSON body as `model`; BadRequest when it does not fit."""
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        raise _bad_request(exc) from exc


def parse_query(model: type[M], query: Mapping[str, list[str]]) -> M:
    """Query parameters as `model` (repeated keys become lists); BadRequest when they do
    not fit."""
    values = {k: v if len(v) > 1 else v[0] for k, v in query.items() if v}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise _bad_request(exc) from exc


def outbound_query(world: World, call: Call) -> Answer:
    query = parse(OutboundQueryRequest, call.body).data
    numbers = [r.order_number for r in query.order_number_list]
    references = [r.reference_number for r in query.reference_number_list]
    ebay = [r.ebay_order_id for r in query.ebay_order_id_list if r.ebay_order_id]
    asked = len(numbers) + len(references) + len(ebay)
    start, end = query.start_time, query.end_time
    if not asked and start is None and end is None:
        return Fail("bad_request", "orderNumberList, referenceNumberList, ebayOrderIdList or "
                    "startTime/endTime is required")  # fmt: skip
    if start is not None or end is not None:
        end = end or call.now
        start = start or end - OUTBOUND_QUERY_MAX_WINDOW
        if end < start:
            return Fail("bad_request", "endTime is before startTime", ids=asked)
        if end - start > OUTBOUND_QUERY_MAX_WINDOW:
            return Fail("limit_exceeded", "The query time range cannot exceed 7 days", ids=asked)
    if asked > call.max_ids:
        return Fail(
            "limit_exceeded",
            f"The orders queried at once cannot exceed {call.max_ids}",
            ids=asked,
        )
    found = world.orders_matching(numbers, references, ebay, start, end)
    if len(found) > OUTBOUND_QUERY_MAX_RESULTS:
        return Fail(
            "limit_exceeded",
            "The query matches more than 1000 orders; please narrow the query conditions",
            ids=asked,
        )
    found.sort(key=lambda o: (o.created_at, o.order_number))
    return Ok([order_json(o, with_consignee=False) for o in found], ids=asked)


def stock_snapshot(world: World, call: Call) -> Answer:
    query = parse(StockSnapshotRequest, call.body).data
    skus = [s.mf_sku_id for s in query.sku_list]
    asked = len(skus)
    if not 1 <= query.page_size <= STOCK_SNAPSHOT_MAX_PAGE_SIZE:
        return Fail("limit_exceeded", "pageSize must be between 1 and 200", asked, asked)
    if query.page_number < 1:
        return Fail("bad_request", "pageNumber must be at least 1", asked, asked)
    if asked > STOCK_SNAPSHOT_MAX_PAGE_SIZE:
        return Fail("limit_exceeded", "SKUList cannot exceed 200 SKUs", asked, asked)
    regions = [r.service_region for r in query.service_region_list]
    rows = world.stock_rows(skus, regions)
    first = (query.page_number - 1) * query.page_size
    page = rows[first : first + query.page_size]
    data = {"SKUList": [stock_row_json(sku, region, cell) for sku, region, cell in page]}
    return Ok(data, ids=asked, skus=asked)


def stock_movement(world: World, call: Call) -> Answer:
    query = parse(StockMovementRequest, call.body).data
    skus = [s.mf_sku_id for s in query.mf_sku_list]
    asked = len(skus)
    end = query.end_time or call.now
    start = query.start_time or end - STOCK_MOVEMENT_MAX_WINDOW
    if end < start:
        return Fail("bad_request", "endTime is before startTime", asked, asked)
    if end - start > STOCK_MOVEMENT_MAX_WINDOW:
        return Fail(
            "limit_exceeded", "GetStockMovement: Query timeslot cannot exceed 7 days.", asked, asked
        )
    if start < call.now - STOCK_MOVEMENT_MAX_AGE:
        return Fail(
            "limit_exceeded",
            "GetStockMovement: Query timeslot is only valid for the last 12 months.",
            asked,
            asked,
        )
    if asked > MAX_SKUS_PER_CALL:
        return Fail("limit_exceeded", "mfSkuList cannot exceed 200 SKUs", asked, asked)
    return Ok(movements_json(world.movements_in(start, end, skus), world.skus), asked, asked)


def service_list(world: World, call: Call) -> Answer:
    return Ok(service_list_json())

"""The OC queries the gateway makes, one typed method per endpoint, paging included.

No batching or caching here (see `client.py`): each method turns its arguments into OC's
request, runs it through `OcCaller` at the given priority, and returns the rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

import httpx

from gateway.clock import Clock
from gateway.oc.caller import Endpoint, OcCaller, new_message_id
from gateway.oc.ratelimit import Priority
from schemas.oc_api import (
    OUTBOUND_QUERY_PATH,
    RETURN_ORDERS_PATH,
    RETURN_STOCK_MAX_IDS,
    RETURN_STOCK_MAX_PAGE_SIZE,
    RETURN_STOCK_PATH,
    STOCK_SNAPSHOT_MAX_PAGE_SIZE,
    STOCK_SNAPSHOT_PATH,
    OcRequest,
    OutboundQuery,
    ReturnOrderQuery,
    ReturnStockQuery,
    ReturnStockRow,
    ServiceRegionRef,
    SkuRef,
    StockSnapshotQuery,
    parse_outbound_query_response,
    parse_return_orders_response,
    parse_return_stock_response,
    parse_stock_snapshot_response,
)
from schemas.oc_entities import OcOutboundOrder, OcReturnOrder, OcStockRow
from schemas.tolerant import TolerantModel

OUTBOUND_QUERY: Final = Endpoint("outbound_query", "POST", OUTBOUND_QUERY_PATH)
STOCK_SNAPSHOT: Final = Endpoint("stock_snapshot", "POST", STOCK_SNAPSHOT_PATH)
RETURN_ORDERS: Final = Endpoint("return_orders", "GET", RETURN_ORDERS_PATH)
RETURN_STOCK: Final = Endpoint("return_stock", "POST", RETURN_STOCK_PATH)

MAX_PAGES: Final = 1000
"""Safety stop for paging through one answer."""


def chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def shorter_list(current: int, refused: int) -> int:
    """The list size to ask for after OC refused `refused` items in one query as too many:
    half of that, never more than `current` (another query may have shortened it
    already), at least 1."""
    return min(current, max(1, refused // 2))


def more_pages(has_next_page: bool | None, rows: int, page_size: int) -> bool:
    """OC says so (`hasNextPage`), or, when it does not say, the page was full (OC's
    last page is the short one)."""
    return has_next_page if has_next_page is not None else rows >= page_size


class OcQueries:
    def __init__(self, caller: OcCaller, clock: Clock) -> None:
        self.caller = caller
        self._clock = clock

    def body(self, data: TolerantModel, api_version: str | None = None) -> bytes:
        """OC's request envelope around `data`: exactly the bytes sent and signed."""
        request = OcRequest[Any](
            api_version=api_version,
            message_id=new_message_id(),
            timestamp=int(self._clock.now().timestamp() * 1000),
            data=data,
        )
        return request.to_request_json()

    async def outbound_orders(
        self, query: OutboundQuery, priority: Priority
    ) -> list[OcOutboundOrder]:
        """One Outbound Order Query v2 (OC answers up to 1,000 orders, unpaged)."""
        answer = await self.caller.call(
            OUTBOUND_QUERY,
            parse_outbound_query_response,
            body=self.body(query, "2.0"),
            priority=priority,
        )
        return answer.data or []

    async def stock_rows(self, skus: list[str], region: str | None) -> list[OcStockRow]:
        """StockSnapshot v2 rows for `skus` (200 per request, every page)."""
        regions = [ServiceRegionRef(service_region=region)] if region else []
        size = STOCK_SNAPSHOT_MAX_PAGE_SIZE
        rows: list[OcStockRow] = []
        for chunk in chunks(skus, size):
            for page in range(1, MAX_PAGES + 1):
                query = StockSnapshotQuery(
                    page_number=page,
                    page_size=size,
                    sku_list=[SkuRef(mf_sku_id=sku) for sku in chunk],
                    service_region_list=regions,
                )
                answer = await self.caller.call(
                    STOCK_SNAPSHOT, parse_stock_snapshot_response, body=self.body(query)
                )
                page_rows = answer.data.sku_list if answer.data else []
                rows += page_rows
                if len(page_rows) < size:
                    break
        return rows

    async def return_order_pages(
        self, query: ReturnOrderQuery, priority: Priority
    ) -> AsyncIterator[list[OcReturnOrder]]:
        """The return orders matching `query`, a page at a time."""
        for page in range(1, MAX_PAGES + 1):
            params = query.model_copy(update={"page_number": page}).to_query()
            answer = await self.caller.call(
                RETURN_ORDERS,
                parse_return_orders_response,
                params=httpx.QueryParams(tuple(params)),
                priority=priority,
            )
            result = answer.result
            orders = result.return_order_list if result else []
            yield orders
            if result is None or not more_pages(result.has_next_page, len(orders), query.page_size):
                return

    async def return_stock_rows(self, ids: list[str]) -> list[ReturnStockRow]:
        """Return stock snapshot rows for `ids` (serviceType SKU), every page."""
        size = RETURN_STOCK_MAX_PAGE_SIZE
        rows: list[ReturnStockRow] = []
        for chunk in chunks(ids, RETURN_STOCK_MAX_IDS):
            for page in range(1, MAX_PAGES + 1):
                query = ReturnStockQuery(unique_id_list=chunk, page_number=page, page_size=size)
                answer = await self.caller.call(
                    RETURN_STOCK, parse_return_stock_response, body=self.body(query)
                )
                result = answer.result
                page_rows = result.inventory_list if result else []
                rows += page_rows
                if result is None or not more_pages(result.has_next_page, len(page_rows), size):
                    break
        return rows

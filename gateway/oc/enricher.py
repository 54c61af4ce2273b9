"""`OcEnricher`: the processor's `Enricher` port, answered with `OcClient` look-ups.

The look-ups of one event (order + stock, or return order + return stock) run
concurrently (when the callback names no SKUs, the stock look-up waits for the order and
takes its SKUs); the enricher waits for them at most `deadline_s` and returns what arrived,
listing the rest in `missing`. An OC failure (error, open breaker, spent budget) is a
missing part, never an exception. Look-ups still running at the deadline keep going in
the background (they are shared) and fill the cache, so the follow-up enrichment finds
their answer. A look-up that OC answered with "no such order/return" is missing too: the
entity may not be visible in OC's query API yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Final

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import OcError
from gateway.oc.client import OcClient
from gateway.ops.logs import get_logger
from gateway.process import mapping
from gateway.process.enrich import OutboundEnrichment, ReturnEnrichment
from schemas.events import EnrichmentPart
from schemas.oc_api import ReturnStockRow
from schemas.oc_entities import OcOutboundOrder, OcReturnOrder, OcStockRow

logger = get_logger("gateway.oc")

_MISSING: Final = object()
"""What `_settle` reports for a look-up that failed or did not answer in time."""


def return_stock_row(row: ReturnStockRow) -> OcStockRow:
    """A return stock snapshot row as a stock row located at its returns warehouse."""
    return OcStockRow(
        mf_sku_id=row.mf_sku_id or row.unique_id or "",
        warehouse_code=row.warehouse_code,
        available=row.available,
        reserved_allocated=row.reserved_allocated,
        reserved_hold=row.reserved_hold,
        reserved_vas=row.reserved_vas,
        suspend=row.suspend,
        unfulfillable=row.unfulfillable,
    )


class OcEnricher:
    """Implements gateway.process.enrich.Enricher over an `OcClient`."""

    def __init__(self, client: OcClient, clock: Clock = SYSTEM_CLOCK) -> None:
        self._client = client
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return True

    async def outbound(
        self, order_number: str, skus: Sequence[str], region: str | None, deadline_s: float
    ) -> OutboundEnrichment:
        order_lookup = asyncio.ensure_future(self._client.get_order(order_number))

        async def stock() -> list[OcStockRow]:
            wanted, where = list(skus), region
            if not wanted:  # the callback named no SKUs: take the order's, once it is here
                order = await asyncio.shield(order_lookup)
                if order is not None:
                    wanted, where = mapping.order_skus(order), region or order.service_region
            return await self._client.stock(wanted, where) if wanted else []

        order, rows = await _settle(deadline_s, order_lookup, stock())
        missing: list[EnrichmentPart] = []
        state = None
        if isinstance(order, OcOutboundOrder):
            state = mapping.order_state(order, self._clock.now())
        else:
            missing.append("order")
        if not isinstance(rows, list):
            missing.append("stock")
            rows = []
        return OutboundEnrichment(
            order=state, stock=mapping.stock_levels(rows), missing=tuple(missing)
        )

    async def returns(
        self, return_number: str, sku_ids: Sequence[str], deadline_s: float
    ) -> ReturnEnrichment:
        order_lookup = asyncio.ensure_future(self._client.get_return(return_number))

        async def stock() -> list[ReturnStockRow]:
            wanted = list(sku_ids)
            if not wanted:  # the callback named no SKUs: take the return's, once it is here
                order = await asyncio.shield(order_lookup)
                if order is not None:
                    wanted = list(
                        dict.fromkeys(i.mf_sku_id for i in order.item_list if i.mf_sku_id)
                    )
            return await self._client.return_stock(wanted) if wanted else []

        order, rows = await _settle(deadline_s, order_lookup, stock())
        missing: list[EnrichmentPart] = []
        state = None
        if isinstance(order, OcReturnOrder):
            state = mapping.return_state(order, self._clock.now())
        if state is None:
            missing.append("return_order")
        if not isinstance(rows, list):
            missing.append("return_stock")
            rows = []
        return ReturnEnrichment(
            return_order=state,
            stock=mapping.stock_levels(return_stock_row(row) for row in rows),
            missing=tuple(missing),
        )


async def _settle(deadline_s: float, *calls: Awaitable[object]) -> list[object]:
    """Run `calls` concurrently for at most `deadline_s`: each one's result, or `_MISSING`
    when it raised an `OcError` or had not finished. Other exceptions (bugs) propagate."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        await asyncio.wait(tasks, timeout=max(0.0, deadline_s))
    finally:
        late = [task for task in tasks if not task.done()]
        for task in late:
            task.cancel()  # stops waiting only: shared look-ups go on and fill the cache
        if late:
            await asyncio.wait(late)
    results: list[object] = []
    for task in tasks:
        error = None if task.cancelled() else task.exception()
        if task.cancelled() or isinstance(error, OcError):
            if error is not None:
                logger.debug("OC look-up failed", error=type(error).__name__)
            results.append(_MISSING)
        elif error is not None:
            raise error
        else:
            results.append(task.result())
    return results

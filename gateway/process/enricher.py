"""`OcEnricher`: the processor's `Enricher` port, answered with `OcClient` look-ups.

A batch's needs are answered together: one many-at-once look-up per part (orders,
returns, stock, return stock), which the client batches into as few OC calls as its
limits allow and answers from its cache where it can. Entity and stock look-ups run
concurrently; a need that names no SKUs takes its entity's, once the entity is here.
The enricher waits at most `deadline_s` in all and returns what arrived, listing the
rest in `missing`. An OC failure (error, open breaker, spent budget) is a missing part,
never an exception. Look-ups still running at the deadline keep going in the
background (they are shared) and fill the cache, so the follow-up enrichment finds
their answer. An entity OC answered "no such order/return" for is missing too: it may
not be visible in OC's query API yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Collection, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import OcError
from gateway.oc.client import OcClient
from gateway.ops.logs import get_logger
from gateway.process import mapping
from gateway.process.enrich import Enriched, Need
from schemas.events import EnrichmentPart, OcOrderState, OcReturnState, StockLevel
from schemas.oc_api import ReturnStockRow
from schemas.oc_entities import OcOutboundOrder, OcReturnOrder, OcStockRow

logger = get_logger("gateway.process")

T = TypeVar("T")
_STOCK_OF: Final[Mapping[EnrichmentPart, EnrichmentPart]] = {
    "order": "stock",
    "return_order": "return_stock",
}
"""Each entity look-up, and the stock look-up that may need its SKUs."""


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


class _Lookup:
    """One many-at-once look-up of a batch, with a deadline shared by all of them."""

    def __init__(self, call: Awaitable[Mapping[str, Any]]) -> None:
        self.task: asyncio.Task[Mapping[str, Any]] = asyncio.ensure_future(call)

    def answer(self) -> Mapping[str, Any] | None:
        """The answers, or None if the look-up failed (OcError) or is not done."""
        task = self.task
        if not task.done() or task.cancelled():
            return None
        error = task.exception()
        if isinstance(error, OcError):
            logger.debug("OC look-up failed", error=type(error).__name__)
            return None
        if error is not None:
            raise error
        return task.result()


async def _within(deadline: float, lookups: Iterable[_Lookup | None]) -> None:
    tasks = [lookup.task for lookup in lookups if lookup is not None]
    if tasks:
        await asyncio.wait(tasks, timeout=max(0.0, deadline - asyncio.get_running_loop().time()))


class OcEnricher:
    """Implements gateway.process.enrich.Enricher over an `OcClient`."""

    def __init__(self, client: OcClient, clock: Clock = SYSTEM_CLOCK) -> None:
        self._client = client
        self._clock = clock
        self._last_turn = -math.inf

    @property
    def enabled(self) -> bool:
        return True

    async def ready(self) -> None:
        """A batch's turn: its two calls' share of OC's budget has passed since the last
        turn, and the budget has room for them now. A batch begun sooner would spend the
        next one's calls on the few records that came in between."""
        calls = len(_STOCK_OF)  # a batch asks for its entities, then for their stock
        wait = self._last_turn + calls / self._client.rate_per_s - self._clock.monotonic()
        if wait > 0:
            await self._clock.sleep(wait)
        await self._client.ready(requests=calls)
        self._last_turn = self._clock.monotonic()

    async def enrich(self, needs: Sequence[Need], deadline_s: float) -> dict[Need, Enriched]:
        if not needs:
            return {}
        deadline = asyncio.get_running_loop().time() + deadline_s
        by_part: dict[EnrichmentPart, list[Need]] = {}
        for need in needs:
            for part in need.parts:
                by_part.setdefault(part, []).append(need)
        entities = {
            part: self._start(part, [n.key for n in by_part.get(part, [])]) for part in _STOCK_OF
        }
        # Stock of the SKUs the needs name goes out with the entities, unless some need of
        # the part names none: its stock waits for the entities anyway, and then one call
        # asks for every SKU (OC's budget is calls, not SKUs).
        named_skus = {
            part: [s for n in by_part.get(part, []) for s in n.skus] for part in _STOCK_OF.values()
        }
        deferred = {
            part for part in _STOCK_OF.values() if any(not n.skus for n in by_part.get(part, []))
        }
        named = {
            part: self._start(part, skus)
            for part, skus in named_skus.items()
            if part not in deferred
        }
        lookups = [*entities.values(), *named.values()]
        try:
            await _within(deadline, entities.values())
            # Needs that named no SKUs take their entity's, now that it is here.
            found = {part: lookup.answer() if lookup else None for part, lookup in entities.items()}
            later = {
                stock: self._start(
                    stock,
                    [
                        *(named_skus[stock] if stock in deferred else ()),
                        *self._entity_skus(entity, by_part.get(stock, []), found),
                    ],
                )
                for entity, stock in _STOCK_OF.items()
            }
            lookups += later.values()
            await _within(deadline, [*named.values(), *later.values()])
            return {need: self._answer(need, found, named, later) for need in dict.fromkeys(needs)}
        finally:
            for lookup in lookups:
                if lookup is not None and not lookup.task.done():
                    lookup.task.cancel()  # stops waiting only: shared look-ups go on
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(
                    *(lookup.task for lookup in lookups if lookup is not None),
                    return_exceptions=True,
                )

    def _start(self, part: EnrichmentPart, keys: Collection[str]) -> _Lookup | None:
        if not keys:
            return None
        client = self._client
        call: Awaitable[Mapping[str, Any]]
        if part == "order":
            call = client.get_orders(keys)
        elif part == "return_order":
            call = client.get_returns(keys)
        elif part == "stock":
            call = client.stock_of(keys)
        else:
            call = client.return_stock_of(keys)
        return _Lookup(call)

    @staticmethod
    def _entity_skus(
        entity_part: EnrichmentPart,
        needs: Sequence[Need],
        found: Mapping[EnrichmentPart, Mapping[str, Any] | None],
    ) -> list[str]:
        answers = found.get(entity_part) or {}
        skus: list[str] = []
        for need in needs:
            if not need.skus and (entity := answers.get(need.key)) is not None:
                skus += _skus_of(entity)
        return skus

    def _answer(
        self,
        need: Need,
        found: Mapping[EnrichmentPart, Mapping[str, Any] | None],
        named: Mapping[EnrichmentPart, _Lookup | None],
        later: Mapping[EnrichmentPart, _Lookup | None],
    ) -> Enriched:
        missing: list[EnrichmentPart] = []
        answers = found.get(need.entity_part)
        raw = answers.get(need.key) if answers is not None else None
        entity = self._entity_state(raw)
        if entity is None:
            missing.append(need.entity_part)
        skus: Sequence[str] = need.skus or (_skus_of(raw) if raw is not None else ())
        lookup = (
            named[need.stock_part]
            if need.skus and need.stock_part in named
            else later.get(need.stock_part)
        )
        stock: tuple[StockLevel, ...] = ()
        if skus:
            rows = lookup.answer() if lookup is not None else None
            if rows is None:
                missing.append(need.stock_part)
            else:
                stock = self._levels(need, skus, rows, raw)
        elif raw is None:
            missing.append(need.stock_part)  # the entity would have named the SKUs
        return Enriched(entity=entity, stock=stock, missing=tuple(missing))

    def _entity_state(self, raw: object) -> OcOrderState | OcReturnState | None:
        now = self._clock.now()
        if isinstance(raw, OcOutboundOrder):
            return mapping.order_state(raw, now)
        if isinstance(raw, OcReturnOrder):
            return mapping.return_state(raw, now)
        return None

    @staticmethod
    def _levels(
        need: Need, skus: Sequence[str], rows: Mapping[str, Any], raw: object
    ) -> tuple[StockLevel, ...]:
        found = [row for sku in dict.fromkeys(skus) for row in rows.get(sku, ())]
        if need.stock_part == "return_stock":
            return tuple(mapping.stock_levels(return_stock_row(r) for r in found))
        region = need.region
        if region is None and not need.skus and isinstance(raw, OcOutboundOrder):
            region = raw.service_region  # the order's own SKUs, where it ships from
        if region is not None:
            found = [row for row in found if row.service_region == region]
        return tuple(mapping.stock_levels(found))


def _skus_of(entity: object) -> list[str]:
    if isinstance(entity, OcOutboundOrder):
        return mapping.order_skus(entity)
    if isinstance(entity, OcReturnOrder):
        return list(dict.fromkeys(i.mf_sku_id for i in entity.item_list if i.mf_sku_id))
    return []

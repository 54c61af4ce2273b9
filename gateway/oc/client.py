"""`OcClient`: the look-ups the gateway makes on OC's API, for one OC account.

Enrichment look-ups (`get_order`, `stock`, `get_return`, `return_stock`, and their
many-at-once forms `get_orders`, `stock_of`, `get_returns`, `return_stock_of`) go
through one `Batcher` each: answered from a short cache
(`oc_cache_ttl_s`), coalesced with identical look-ups in flight, and batched across
concurrent callers for `oc_batch_window_ms` (the many-at-once forms send at once, their
caller has all its keys together; orders: up to `oc_orders_per_query` numbers per
query, fewer from the first time OC refuses that many as too many (the list is halved
until OC takes it, and the client keeps the smaller size); returns: up to 50 numbers per
query; StockSnapshot v2 and the return stock snapshot: up to 200 ids per request, every
page). When an endpoint's breaker is open, look-ups not in the cache fail at once.

Reconciliation (`iter_outbound_orders`, `iter_return_orders`) walks a time range in
windows of at most 7 days, halving an outbound window that OC refuses as too big (more
than 1,000 orders) or answers with a full 1,000. It runs at `Priority.RECONCILE` on the
same limiter and breakers as enrichment, so it gets a smaller share of OC and yields
first when OC is busy or strained (see `ratelimit.py`).

All calls are signed and authenticated by `OcAuth` and run through `OcCaller` (breaker,
limiter, retries); failures surface as `OcError`s (gateway.errors).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Final, TypeVar

import httpx

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import ConfigurationError
from gateway.oc import redaction
from gateway.oc.auth import OcAuth
from gateway.oc.batching import Batcher
from gateway.oc.cache import TtlCache
from gateway.oc.caller import OcCaller
from gateway.oc.queries import (
    OUTBOUND_QUERY,
    RETURN_ORDERS,
    RETURN_STOCK,
    STOCK_SNAPSHOT,
    OcQueries,
    chunks,
    shorter_list,
)
from gateway.oc.ratelimit import AccountLimiter, Priority
from gateway.oc.responses import OcLimitExceeded
from gateway.oc.tokens import TokenStore
from gateway.oc.windows import Window, halve, split_range
from gateway.ops.logs import get_logger
from gateway.ops.metrics import Metrics
from gateway.ops.tracing import Tracing
from gateway.retry import RetryPolicy
from gateway.settings import Settings
from schemas.oc_api import (
    OAUTH_TOKEN_PATH,
    OUTBOUND_QUERY_MAX_RESULTS,
    OUTBOUND_QUERY_MAX_WINDOW,
    RETURN_ORDERS_MAX_PAGE_SIZE,
    RETURN_STOCK_MAX_IDS,
    STOCK_SNAPSHOT_MAX_PAGE_SIZE,
    OutboundQuery,
    ReturnOrderQuery,
    ReturnStockRow,
)
from schemas.oc_entities import OcOutboundOrder, OcReturnOrder, OcStockRow

logger = get_logger("gateway.oc")

RETURNS_PER_QUERY: Final = 50
RETURN_ORDERS_WINDOW: Final = OUTBOUND_QUERY_MAX_WINDOW
"""Not published for returns; the 7 days of OC's other time windows."""

V = TypeVar("V")


class OcClient:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        if not settings.oc_base_url:
            raise ConfigurationError("OcClient needs oc_base_url")
        self._settings = settings
        self._metrics = metrics
        self._transport = transport
        self._clock = clock
        self._rng = rng
        self._tracing = tracing
        self._http: httpx.AsyncClient | None = None
        self._queries: OcQueries | None = None
        self._batchers: list[Batcher[str, Any]] = []
        self._stock: Batcher[str, list[OcStockRow]] = self._batcher(
            STOCK_SNAPSHOT.name, self._fetch_stock, STOCK_SNAPSHOT_MAX_PAGE_SIZE, []
        )
        self._orders = self._batcher(
            OUTBOUND_QUERY.name, self._fetch_orders, settings.oc_orders_per_query, None
        )
        self.orders_per_query = settings.oc_orders_per_query
        """Order numbers per Outbound Order Query: the setting, until OC refuses as many."""
        self._returns = self._batcher(
            RETURN_ORDERS.name, self._fetch_returns, RETURNS_PER_QUERY, None
        )
        self._return_stock: Batcher[str, list[ReturnStockRow]] = self._batcher(
            RETURN_STOCK.name, self._fetch_return_stock, RETURN_STOCK_MAX_IDS, []
        )

    # --- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Open the HTTP client (reads the token store). Nothing is sent until a look-up."""
        settings = self._settings
        redaction.install()
        base_url = settings.oc_base_url.rstrip("/")
        auth = OcAuth(
            token_url=base_url + OAUTH_TOKEN_PATH,
            client_key=settings.oc_client_key,
            secret_key=settings.oc_secret_key.get_secret_value(),
            bootstrap_refresh_token=settings.oc_refresh_token.get_secret_value(),
            store=TokenStore(settings.token_store_path),
            clock=self._clock,
            metrics=self._metrics,
        )
        self._http = httpx.AsyncClient(
            base_url=base_url,
            auth=auth,
            timeout=httpx.Timeout(settings.oc_timeout_s),
            limits=httpx.Limits(
                max_connections=settings.oc_max_concurrency,
                max_keepalive_connections=settings.oc_max_concurrency,
            ),
            transport=self._transport,
        )
        caller = OcCaller(
            self._http,
            limiter=AccountLimiter(
                max_concurrency=settings.oc_max_concurrency,
                rate_per_s=settings.oc_rate_limit_per_s,
                clock=self._clock,
            ),
            policy=RetryPolicy(settings.oc_max_retries, settings.oc_total_timeout_s),
            metrics=self._metrics,
            clock=self._clock,
            breaker_failures=settings.oc_breaker_failures,
            breaker_reset_s=settings.oc_breaker_reset_s,
            rng=self._rng,
            tracing=self._tracing,
        )
        self._queries = OcQueries(caller, self._clock)

    async def close(self) -> None:
        """Fail pending look-ups with `OcUnavailable` and close the connections."""
        for batcher in self._batchers:
            await batcher.close()
        if self._http is not None:
            await self._http.aclose()

    @property
    def queries(self) -> OcQueries:
        """The unbatched queries (and, through `.caller`, breakers and limiter)."""
        if self._queries is None:
            raise RuntimeError("OcClient.start() was not awaited")
        return self._queries

    @property
    def caller(self) -> OcCaller:
        return self.queries.caller

    @property
    def rate_per_s(self) -> float:
        """The account's budget of requests per second."""
        return self._settings.oc_rate_limit_per_s

    async def ready(self, requests: int = 1) -> None:
        """Return once `requests` enrichment look-ups asked now would go out at once."""
        await self.caller.limiter.ready(Priority.ENRICH, requests)

    # --- enrichment look-ups --------------------------------------------------------------
    async def get_order(self, order_number: str) -> OcOutboundOrder | None:
        """The order as Outbound Order Query v2 reports it, or None if OC has no such order."""
        return await self._orders.get(order_number)

    async def stock(self, skus: list[str], region: str | None) -> list[OcStockRow]:
        """StockSnapshot v2 rows of `skus` in `region` (every region when None).

        Look-ups of every region share one batch asked without a region filter: orders
        of one batch ship from several regions, and one call for all of them beats a
        call per region (the rows of other regions are cached for their look-ups)."""
        found = await self._stock.get_many(skus)
        rows = [row for rows in found.values() for row in rows]
        return rows if region is None else [r for r in rows if r.service_region == region]

    async def get_return(self, return_number: str) -> OcReturnOrder | None:
        """The return (RMA) order from the return-order query, or None if OC has none."""
        return await self._returns.get(return_number)

    async def return_stock(self, ids: list[str]) -> list[ReturnStockRow]:
        """Return stock snapshot rows of `ids` (serviceType SKU)."""
        found = await self._return_stock.get_many(ids)
        return [row for rows in found.values() for row in rows]

    # Many at once: a processor batch asks for all its entities in one go, so their
    # look-ups go out now (with whatever single look-ups are queued) instead of after the
    # batch window.
    async def get_orders(self, numbers: Iterable[str]) -> dict[str, OcOutboundOrder | None]:
        """`get_order` for each of `numbers` (None where OC has no such order)."""
        return await self._orders.get_many(numbers, at_once=True)

    async def stock_of(self, skus: Iterable[str]) -> dict[str, list[OcStockRow]]:
        """StockSnapshot v2 rows of each of `skus`, every region."""
        return await self._stock.get_many(skus, at_once=True)

    async def get_returns(self, numbers: Iterable[str]) -> dict[str, OcReturnOrder | None]:
        """`get_return` for each of `numbers` (None where OC has no such return)."""
        return await self._returns.get_many(numbers, at_once=True)

    async def return_stock_of(self, ids: Iterable[str]) -> dict[str, list[ReturnStockRow]]:
        """Return stock snapshot rows of each of `ids`."""
        return await self._return_stock.get_many(ids, at_once=True)

    def _batcher(
        self,
        endpoint: str,
        fetch: Callable[[list[str]], Awaitable[Mapping[str, V]]],
        max_batch: int,
        absent: V,
    ) -> Batcher[str, V]:
        batcher = Batcher(
            fetch,
            window_s=self._settings.oc_batch_window_ms / 1000,
            max_batch=max_batch,
            cache=TtlCache[str, V](self._settings.oc_cache_ttl_s, self._clock),
            clock=self._clock,
            absent=absent,
            precheck=lambda: self.caller.refuse_if_open(endpoint),
            on_hit=self._metrics.oc_cache_hits.labels(endpoint).inc,
            on_batch=self._metrics.oc_batch_size.labels(endpoint).observe,
        )
        self._batchers.append(batcher)
        return batcher

    async def _fetch_stock(self, skus: list[str]) -> dict[str, list[OcStockRow]]:
        return _group(skus, await self.queries.stock_rows(skus, None), _stock_key)

    async def _fetch_orders(self, numbers: list[str]) -> dict[str, OcOutboundOrder | None]:
        found: dict[str, OcOutboundOrder | None] = {}
        pending = [numbers]
        while pending:
            chunk = pending.pop()
            if len(chunk) > self.orders_per_query:
                pending += chunks(chunk, self.orders_per_query)
                continue
            try:
                orders = await self.queries.outbound_orders(
                    OutboundQuery.for_orders(chunk), Priority.ENRICH
                )
            except OcLimitExceeded:
                # OC documents a cap on results (1,000), none on the list: an account may
                # have one. Ask again in halves, and never for as many again.
                if len(chunk) == 1:
                    raise
                self._fewer_orders_per_query(len(chunk))
                pending.append(chunk)
                continue
            for order in orders:
                found.setdefault(order.order_number, order)
        return found

    def _fewer_orders_per_query(self, refused: int) -> None:
        size = shorter_list(self.orders_per_query, refused)
        if size < self.orders_per_query:
            logger.warning(
                "OC refused an Outbound Order Query as too big; asking for fewer orders",
                refused=refused,
                orders_per_query=size,
                setting="GATEWAY_OC_ORDERS_PER_QUERY",
            )
            self.orders_per_query = size

    async def _fetch_returns(self, numbers: list[str]) -> dict[str, OcReturnOrder | None]:
        found: dict[str, OcReturnOrder | None] = {}
        for chunk in chunks(numbers, RETURNS_PER_QUERY):
            query = ReturnOrderQuery(return_numbers=chunk, page_size=RETURN_ORDERS_MAX_PAGE_SIZE)
            async for orders in self.queries.return_order_pages(query, Priority.ENRICH):
                for order in orders:
                    if order.return_number is not None:
                        found.setdefault(order.return_number, order)
        return found

    async def _fetch_return_stock(self, ids: list[str]) -> dict[str, list[ReturnStockRow]]:
        return _group(ids, await self.queries.return_stock_rows(ids), _return_stock_key)

    # --- reconciliation -------------------------------------------------------------------
    async def iter_outbound_orders(
        self,
        start: datetime,
        end: datetime,
        *,
        priority: Priority = Priority.RECONCILE,
        budget: CallBudget | None = None,
    ) -> AsyncIterator[OcOutboundOrder]:
        """Every order OC reports for the creation window [start, end], once each, in
        window order. Each query spends one call of `budget` (BudgetSpent when empty)."""
        seen: set[str] = set()
        for window in split_range(start, end, OUTBOUND_QUERY_MAX_WINDOW):
            pending: list[Window] = [window]
            while pending:
                window_start, window_end = pending.pop()
                query = OutboundQuery(start_time=window_start, end_time=window_end)
                halves = halve((window_start, window_end))
                if budget is not None:
                    budget.spend()
                try:
                    orders = await self.queries.outbound_orders(query, priority)
                except OcLimitExceeded:
                    if halves is None:
                        raise
                    orders = None
                # OC refuses a window with more than 1,000 orders (or may cut the answer
                # at 1,000): ask for each half instead.
                if halves is not None and (
                    orders is None or len(orders) >= OUTBOUND_QUERY_MAX_RESULTS
                ):
                    pending += [halves[1], halves[0]]  # the earlier half next
                    continue
                for order in orders or []:
                    if order.order_number not in seen:
                        seen.add(order.order_number)
                        yield order

    async def iter_return_orders(
        self,
        start: datetime,
        end: datetime,
        *,
        priority: Priority = Priority.RECONCILE,
        budget: CallBudget | None = None,
    ) -> AsyncIterator[OcReturnOrder]:
        """Every return order OC reports for the window [start, end], once each. Each
        window (its first page) spends one call of `budget`."""
        seen: set[str] = set()
        for window_start, window_end in split_range(start, end, RETURN_ORDERS_WINDOW):
            if budget is not None:
                budget.spend()
            query = ReturnOrderQuery(
                start_time=window_start,
                end_time=window_end,
                page_size=RETURN_ORDERS_MAX_PAGE_SIZE,
            )
            async for orders in self.queries.return_order_pages(query, priority):
                for order in orders:
                    number = order.return_number
                    if number is not None and number not in seen:
                        seen.add(number)
                        yield order


class BudgetSpent(Exception):
    """A reconciliation run used up its OC call budget."""


class CallBudget:
    """How many more OC query calls a reconciliation run may make."""

    def __init__(self, calls: int) -> None:
        self.left = calls
        self.spent = 0

    def spend(self) -> None:
        if self.left <= 0:
            raise BudgetSpent(f"OC call budget spent after {self.spent} calls")
        self.left -= 1
        self.spent += 1


def _stock_key(row: OcStockRow) -> str | None:
    return row.mf_sku_id


def _return_stock_key(row: ReturnStockRow) -> str | None:
    return row.unique_id or row.mf_sku_id


def _group(keys: list[str], rows: list[V], key_of: Callable[[V], str | None]) -> dict[str, list[V]]:
    """`rows` by the requested key they answer; rows for keys not asked are dropped."""
    grouped: dict[str, list[V]] = {key: [] for key in keys}
    for row in rows:
        key = key_of(row)
        if key is not None and key in grouped:
            grouped[key].append(row)
    return grouped

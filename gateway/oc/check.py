"""`gateway oc check`: one cheap signed call per OC API family the gateway uses.

The calls go through the gateway's own client (token refresh, signature, caller), so they
test exactly what enrichment and reconciliation will do, and ask for as little as OC
allows: orders and returns created in the last minute (one per page), one stock row, and
the return stock of an id no account has (OC lists unknown ids as failed, not as an
error). Each result is OK or OC's own error code and message. A refused token refresh
fails every family at once, so it is reported on its own and the families are not tried.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Generic

import httpx

from gateway.errors import OcError
from gateway.oc.auth import TOKEN_ENDPOINT
from gateway.oc.caller import Endpoint
from gateway.oc.queries import (
    OUTBOUND_QUERY,
    RETURN_ORDERS,
    RETURN_STOCK,
    STOCK_SNAPSHOT,
    OcQueries,
)
from gateway.oc.responses import E
from schemas.oc_api import (
    BUSINESS_PREFIX,
    OcResponse,
    OutboundQuery,
    Return2Response,
    ReturnOrderQuery,
    ReturnStockQuery,
    StockSnapshotQuery,
    parse_outbound_query_response,
    parse_return_orders_response,
    parse_return_stock_response,
    parse_stock_snapshot_response,
)

WINDOW: Final = timedelta(minutes=1)
UNKNOWN_ID: Final = "GATEWAY-CHECK-NO-SUCH-ID"


@dataclass(frozen=True, slots=True)
class CheckResult:
    family: str
    """"token refresh", "order query", "stock snapshot", "return orders", "return stock"."""
    call: str
    """Method and path, e.g. `POST /openapi/3pp/outbound/v2/query`."""
    ok: bool | None
    """True OK, False failed, None not tried."""
    detail: str


class _Keeper(Generic[E]):
    """A parse function that also keeps the envelope it parsed, so a failure can be shown
    with OC's own fields after `OcCaller` has turned it into an `OcError`."""

    def __init__(self, parse: Callable[[bytes], E]) -> None:
        self._parse = parse
        self.envelope: E | None = None

    def __call__(self, body: bytes) -> E:
        self.envelope = self._parse(body)
        return self.envelope


def oc_error_text(envelope: object) -> str | None:
    """OC's own error code and message from a failed answer of either envelope (pure)."""
    if isinstance(envelope, OcResponse):
        first = envelope.errors[0] if envelope.errors else None
        code = first.code if first is not None and first.code is not None else envelope.code
        message = (first.message if first is not None else None) or envelope.message
        return " ".join(str(p) for p in (code, message) if p not in (None, "")) or None
    if isinstance(envelope, Return2Response):
        message = envelope.error_msg or envelope.message
        parts = (envelope.error_code, message)
        return " ".join(str(p) for p in parts if p not in (None, "")) or None
    return None


def _call_of(endpoint: Endpoint) -> str:
    return f"{endpoint.method} {BUSINESS_PREFIX}{endpoint.path}"


@dataclass(frozen=True, slots=True)
class _Probe:
    family: str
    endpoint: Endpoint
    run: Callable[[OcQueries, datetime], Awaitable[str]]


async def _orders(queries: OcQueries, now: datetime) -> str:
    keeper = _Keeper(parse_outbound_query_response)
    query = OutboundQuery(start_time=now - WINDOW, end_time=now)
    answer = await _call(queries, OUTBOUND_QUERY, keeper, body=queries.body(query, "2.0"))
    return f"{len(answer.data or [])} orders created in the last minute"


async def _stock(queries: OcQueries, now: datetime) -> str:
    keeper = _Keeper(parse_stock_snapshot_response)
    query = StockSnapshotQuery(page_number=1, page_size=1)
    answer = await _call(queries, STOCK_SNAPSHOT, keeper, body=queries.body(query))
    rows = len(answer.data.sku_list) if answer.data else 0
    return f"{rows} stock row (page size 1)"


async def _returns(queries: OcQueries, now: datetime) -> str:
    keeper = _Keeper(parse_return_orders_response)
    query = ReturnOrderQuery(start_time=now - WINDOW, end_time=now, page_size=1)
    params = httpx.QueryParams(tuple(query.to_query()))
    answer = await _call(queries, RETURN_ORDERS, keeper, params=params)
    found = len(answer.result.return_order_list) if answer.result else 0
    return f"{found} return orders on the first page (page size 1)"


async def _return_stock(queries: OcQueries, now: datetime) -> str:
    keeper = _Keeper(parse_return_stock_response)
    query = ReturnStockQuery(unique_id_list=[UNKNOWN_ID], page_number=1, page_size=1)
    answer = await _call(queries, RETURN_STOCK, keeper, body=queries.body(query))
    failed = answer.result.failed_count if answer.result else None
    return "answered" + (f" ({failed} unknown id, as expected)" if failed is not None else "")


class _ProbeFailed(Exception):
    """A family's call failed; the message is OC's own code and message when it sent
    them, else what the client saw (HTTP status, timeout)."""


async def _call(queries: OcQueries, endpoint: Endpoint, keeper: _Keeper[E], **request: Any) -> E:
    try:
        return await queries.caller.call(endpoint, keeper, **request)
    except OcError as exc:
        if exc.endpoint == TOKEN_ENDPOINT:
            raise
        raise _ProbeFailed(oc_error_text(keeper.envelope) or str(exc)) from exc


PROBES: Final = (
    _Probe("order query", OUTBOUND_QUERY, _orders),
    _Probe("stock snapshot", STOCK_SNAPSHOT, _stock),
    _Probe("return orders", RETURN_ORDERS, _returns),
    _Probe("return stock", RETURN_STOCK, _return_stock),
)


TOKEN_CALL: Final = "POST /oauth/token"
NOT_TRIED: Final = "not tried: the token refresh failed"


async def check_account(queries: OcQueries, now: datetime) -> list[CheckResult]:
    """The token refresh, then one call per family, each OK, failed or not tried."""
    token: CheckResult | None = None
    results: list[CheckResult] = []
    for probe in PROBES:
        call = _call_of(probe.endpoint)
        if token is not None and token.ok is False:
            results.append(CheckResult(probe.family, call, None, NOT_TRIED))
            continue
        ok = True
        try:
            detail = await probe.run(queries, now)
        except _ProbeFailed as exc:
            ok, detail = False, str(exc)
        except OcError as exc:  # the token refresh (the only OcError _call lets through)
            token = CheckResult("token refresh", TOKEN_CALL, False, str(exc))
            results.append(CheckResult(probe.family, call, None, NOT_TRIED))
            continue
        token = token or CheckResult("token refresh", TOKEN_CALL, True, "access token issued")
        results.append(CheckResult(probe.family, call, ok, detail))
    assert token is not None
    return [token, *results]

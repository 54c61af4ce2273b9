"""One logical call to an OC endpoint: breaker, retries, limits, metrics, error translation.

For each attempt: the endpoint's breaker admits it (or it fails at once with
`OcUnavailable`), the account limiter gives it a slot at its priority, httpx sends it
(with `OcAuth` adding token and signature), and the answer is checked. Transient
failures are retried by `with_retries` (the only retry layer), within the call's total
time budget; a 429 also pauses the account, other transient failures pause
reconciliation. Outcomes are counted per endpoint: ok, rejected, auth_failed,
throttled, transient, breaker_open, budget_spent.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import httpx

from gateway.clock import Clock
from gateway.errors import OcAuthError, OcError, OcRejected, OcTransient, OcUnavailable
from gateway.oc.breaker import BreakerOpen, BreakerState, CircuitBreaker
from gateway.oc.ratelimit import AccountLimiter, Priority
from gateway.oc.responses import (
    PARSE_EXTENSION,
    E,
    OcThrottled,
    read_answer,
    transport_error,
)
from gateway.ops.metrics import Metrics
from gateway.ops.tracing import Tracing
from gateway.retry import RetryPolicy, with_retries
from schemas.oc_api import BUSINESS_PREFIX


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    """Short, fixed metrics label and breaker name, e.g. "stock_snapshot"."""
    method: str
    path: str
    """The business path without `/openapi`."""


_OUTCOMES: Final[tuple[tuple[type[OcError], str], ...]] = (
    (OcThrottled, "throttled"),
    (OcTransient, "transient"),
    (OcAuthError, "auth_failed"),
    (OcRejected, "rejected"),
)


def outcome_of(error: OcError) -> str:
    for kind, label in _OUTCOMES:
        if isinstance(error, kind):
            return label
    return "unavailable"


def is_outage(error: BaseException) -> bool:
    """Failures that say OC is down (for the breaker): not 429, not refusals."""
    return isinstance(error, OcTransient) and not isinstance(error, OcThrottled)


def new_message_id() -> str:
    return uuid.uuid4().hex


class OcCaller:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        limiter: AccountLimiter,
        policy: RetryPolicy,
        metrics: Metrics,
        clock: Clock,
        breaker_failures: int,
        breaker_reset_s: float,
        rng: random.Random | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._tracing = tracing
        self._http = http
        self.limiter = limiter
        self._policy = policy
        self._metrics = metrics
        self._clock = clock
        self._rng = rng or random.Random()
        self._retries = metrics.retries.labels("oc_request")
        self._breaker_failures = breaker_failures
        self._breaker_reset_s = breaker_reset_s
        self._breakers: dict[str, CircuitBreaker] = {}

    def breaker(self, endpoint: str) -> CircuitBreaker:
        """The endpoint's breaker (created on first use, exported as a gauge)."""
        breaker = self._breakers.get(endpoint)
        if breaker is None:
            breaker = self._breakers[endpoint] = CircuitBreaker(
                endpoint,
                failures=self._breaker_failures,
                reset_s=self._breaker_reset_s,
                clock=self._clock,
                on_change=self._export_breaker,
            )
        return breaker

    def _export_breaker(self, endpoint: str, state: BreakerState) -> None:
        self._metrics.oc_breaker_state.labels(endpoint).set(int(state))

    def refuse_if_open(self, endpoint: str) -> None:
        """Raise `BreakerOpen` now when the endpoint's breaker would refuse a call."""
        try:
            self.breaker(endpoint).refuse_if_open()
        except BreakerOpen:
            self._metrics.oc_requests.labels(endpoint, "breaker_open").inc()
            raise

    async def call(
        self,
        endpoint: Endpoint,
        parse: Callable[[bytes], E],
        *,
        body: bytes | None = None,
        params: httpx.QueryParams | None = None,
        priority: Priority = Priority.ENRICH,
    ) -> E:
        """The checked answer of `endpoint`, retried as the policy allows."""
        breaker = self.breaker(endpoint.name)

        async def attempt(remaining_s: float) -> E:
            try:
                with breaker.attempt(is_outage):
                    try:
                        async with asyncio.timeout(max(0.0, remaining_s)):
                            async with self.limiter.slot(priority):
                                return await self._send(endpoint, parse, body, params)
                    except TimeoutError:
                        self._metrics.oc_requests.labels(endpoint.name, "budget_spent").inc()
                        raise OcUnavailable(
                            f"OC {endpoint.name}: time budget spent", endpoint=endpoint.name
                        ) from None
            except BreakerOpen:
                self._metrics.oc_requests.labels(endpoint.name, "breaker_open").inc()
                raise

        return await with_retries(
            attempt, self._policy, self._clock, self._rng, on_retry=self._retried
        )

    def _retried(self, error: BaseException) -> None:
        self._retries.inc()

    async def _traced_send(self, endpoint: Endpoint, request: httpx.Request) -> httpx.Response:
        if self._tracing is None or not self._tracing.enabled:
            return await self._http.send(request)
        attributes = {"oc.endpoint": endpoint.name, "http.request.method": endpoint.method}
        with self._tracing.span(f"oc {endpoint.name}", attributes=attributes, kind="client"):
            return await self._http.send(request)

    async def _send(
        self,
        endpoint: Endpoint,
        parse: Callable[[bytes], E],
        body: bytes | None,
        params: httpx.QueryParams | None,
    ) -> E:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        request = self._http.build_request(
            endpoint.method,
            BUSINESS_PREFIX + endpoint.path,
            content=body,
            params=params,
            headers=headers,
            extensions={PARSE_EXTENSION: parse},
        )
        started = self._clock.monotonic()
        try:
            try:
                response = await self._traced_send(endpoint, request)
            except httpx.HTTPError as exc:
                raise transport_error(exc, endpoint.name) from exc
            answer = read_answer(response, parse, endpoint.name)
        except OcError as error:
            self._metrics.oc_requests.labels(endpoint.name, outcome_of(error)).inc()
            if isinstance(error, OcThrottled):
                self.limiter.throttled(error.retry_after_s)
            elif isinstance(error, OcTransient):
                self.limiter.strained()
            raise
        finally:
            duration = self._clock.monotonic() - started
            self._metrics.oc_request_duration.labels(endpoint.name).observe(duration)
        self._metrics.oc_requests.labels(endpoint.name, "ok").inc()
        return answer

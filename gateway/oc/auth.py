"""OC's request authentication as an `httpx.Auth`: OAuth access token and signature.

Every business request gets `Access-Token: Bearer <token>`, `clientKey` and the
`vAuthorization` signature over its exact path and body bytes. The access token is
refreshed with the refresh token a little before it expires (`refresh_margin_s`), under a
lock, so concurrent requests share one refresh. Each refresh also holds the token store's
lock file and starts from the token stored now (another process sharing the store may
have rotated it); a rotated refresh token is persisted before it is used. When OC refuses
the token (HTTP 401, or HTTP 200 with an auth failure in either envelope) the request is
retried once: after a refresh, unless another request refreshed the token meanwhile. A
second refusal is handed back to the caller as is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Generator

import httpx
from pydantic import ValidationError

from gateway.clock import Clock
from gateway.errors import OcAuthError, OcTransient
from gateway.oc.responses import OcThrottled, is_auth_failure, retry_after_s
from gateway.oc.signing import CLIENT_KEY_HEADER, SIGNATURE_HEADER, oc_signature
from gateway.oc.tokens import StoredToken, StoreLocked, TokenStore, newest
from gateway.ops.metrics import Metrics
from schemas.oc_api import ACCESS_TOKEN_TTL_S, TokenRequest, parse_token_response

ACCESS_TOKEN_HEADER = "Access-Token"
TOKEN_ENDPOINT = "token"
MAX_REFRESH_MARGIN_S = 300.0
REFRESH_MARGIN_SHARE = 0.2


def refresh_margin_s(expires_in_s: float) -> float:
    """How long before expiry to refresh: a fifth of the lifetime, at most 5 minutes
    (3,600 s tokens are refreshed after 55 minutes)."""
    return min(MAX_REFRESH_MARGIN_S, expires_in_s * REFRESH_MARGIN_SHARE)


class OcAuth(httpx.Auth):
    requires_response_body = True  # the body tells whether a 200 is an auth failure;
    # async_auth_flow is overridden, so it reads each body itself (`aread`).

    def __init__(
        self,
        *,
        token_url: str,
        client_key: str,
        secret_key: str,
        bootstrap_refresh_token: str,
        store: TokenStore,
        clock: Clock,
        metrics: Metrics,
    ) -> None:
        self._token_url = token_url
        self._client_key = client_key
        self._secret_key = secret_key
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._bootstrap = bootstrap_refresh_token
        start = store.starting_point(bootstrap_refresh_token)
        self._refresh_token, self._seed = start.refresh_token, start.seed
        self._access_token: str | None = None
        self._refresh_at = float("-inf")
        self._lock = asyncio.Lock()

    def sign(self, request: httpx.Request, access_token: str) -> None:
        """Set the token and signature headers on `request` (its body must be bytes)."""
        request.headers[ACCESS_TOKEN_HEADER] = f"Bearer {access_token}"
        request.headers[CLIENT_KEY_HEADER] = self._client_key
        request.headers[SIGNATURE_HEADER] = oc_signature(
            request.url.path, request.content, self._client_key, self._secret_key
        )

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("OcAuth works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        refused: str | None = None
        for attempt in (1, 2):
            async with self._lock:
                if self._needs_refresh(refused):
                    async with self._store_locked():
                        await self._take_newest()
                        answer = yield self._refresh_request()
                        await answer.aread()
                        await self._accept(answer)
                token = self._access_token
            assert token is not None  # _accept raises unless it stored a token
            self.sign(request, token)
            response = yield request
            await response.aread()
            if attempt == 2 or not is_auth_failure(request, response):
                return
            refused = token

    @contextlib.asynccontextmanager
    async def _store_locked(self) -> AsyncIterator[None]:
        try:
            async with self._store.locked():
                yield
        except StoreLocked:
            self._metrics.oc_token_refreshes.labels("error").inc()
            raise OcTransient(
                f"the OC token store {self._store.path} stayed locked by another process",
                endpoint=TOKEN_ENDPOINT,
            ) from None

    async def _take_newest(self) -> None:
        """Start from the stored token when another process sharing the store rotated
        ours (or, with no bootstrap token configured, a new login replaced the grant)."""
        held = StoredToken(self._refresh_token, self._seed)
        stored = await asyncio.to_thread(self._store.load)
        chosen = newest(stored, self._bootstrap, held)
        self._refresh_token, self._seed = chosen.refresh_token, chosen.seed

    def _needs_refresh(self, refused: str | None) -> bool:
        if self._access_token is None or self._access_token == refused:
            return True
        return self._clock.monotonic() >= self._refresh_at

    def _refresh_request(self) -> httpx.Request:
        if not self._refresh_token:
            self._metrics.oc_token_refreshes.labels("rejected").inc()
            raise OcAuthError("no OC refresh token is configured", endpoint=TOKEN_ENDPOINT)
        query = TokenRequest.refresh(self._client_key, self._refresh_token).to_query()
        return httpx.Request(
            "POST", self._token_url, params=query, headers={CLIENT_KEY_HEADER: self._client_key}
        )

    async def _accept(self, response: httpx.Response) -> None:
        """Take the new tokens from a refresh answer, or raise what the answer means."""
        status = response.status_code
        if status == 429 or status >= 500:
            self._metrics.oc_token_refreshes.labels("error").inc()
            raise (OcThrottled if status == 429 else OcTransient)(
                f"OC token refresh answered HTTP {status}",
                endpoint=TOKEN_ENDPOINT,
                retry_after_s=retry_after_s(response),
            )
        try:
            answer = parse_token_response(response.content)
        except ValidationError:
            self._metrics.oc_token_refreshes.labels("error").inc()
            raise OcTransient(
                f"OC token refresh answered unreadably (HTTP {status})", endpoint=TOKEN_ENDPOINT
            ) from None
        if answer.is_failure() or answer.access_token is None:
            refused = answer.is_auth_failure() or 400 <= status < 500
            self._metrics.oc_token_refreshes.labels("rejected" if refused else "error").inc()
            error = OcAuthError if refused else OcTransient
            detail = answer.error or "no access token"
            if answer.error_description:
                detail += f": {answer.error_description}"
            raise error(f"OC token refresh failed: HTTP {status} {detail}", endpoint=TOKEN_ENDPOINT)
        if answer.refresh_token and answer.refresh_token != self._refresh_token:
            await asyncio.to_thread(self._store.save, answer.refresh_token, self._seed)
            self._refresh_token = answer.refresh_token
        lifetime = float(answer.expires_in or ACCESS_TOKEN_TTL_S)
        self._access_token = answer.access_token
        self._refresh_at = self._clock.monotonic() + lifetime - refresh_margin_s(lifetime)
        self._metrics.oc_token_refreshes.labels("ok").inc()

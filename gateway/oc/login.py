"""One `gateway oc login` attempt, from OC's authorize URL to a new grant's tokens.

`LoginSession.open` makes a fresh `state` and, for a loopback redirect URI (by default
`http://127.0.0.1:<free port>/oauth/callback`), listens for OC's redirect. The code comes
from that redirect, or from the redirect's address pasted by the user when the browser
runs on another machine; either way only with this login's state. `exchange_code` makes
OC's token call (every parameter in the query string of a POST with no body, the same
`redirect_uri`; oc-api README §2.1, §6.1). Every way this can fail is a `LoginFailed`
that says what happened and what to do; no message ever carries a token or a code.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Final

import httpx
from pydantic import ValidationError

from gateway.errors import LoginFailed
from gateway.oc.authorize import (
    CALLBACK_PATH,
    Code,
    Loopback,
    Refusal,
    authorize_url,
    default_redirect_uri,
    loopback,
    new_state,
    read_redirect,
)
from gateway.oc.loopback import Arrival, Page, RedirectListener
from gateway.oc.signing import CLIENT_KEY_HEADER
from schemas.oc_api import OAUTH_TOKEN_PATH, TokenRequest, parse_token_response

CODE_HINT: Final = (
    "An authorization code works once, for a few minutes, and only with the redirect URI "
    "it was issued for: run `gateway oc login` again."
)


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """OC's answer to a code exchange. The tokens stay out of `repr` (and so out of
    tracebacks and logs)."""

    refresh_token: str = field(repr=False)
    access_token: str = field(repr=False)
    expires_in: int | None = None


def read_token_answer(status: int, body: bytes) -> TokenGrant:
    """The tokens in OC's answer to the code exchange, or the `LoginFailed` it means."""
    try:
        answer = parse_token_response(body)
    except ValidationError:
        if status == 429 or status >= 500:
            raise LoginFailed(
                f"OC's token endpoint answered HTTP {status}: OC is unavailable or busy; "
                "try again later with a new login."
            ) from None
        raise LoginFailed(
            f"OC's token endpoint answered HTTP {status} with something that is not a "
            "token answer; check GATEWAY_OC_BASE_URL (OC's OAuth host, without /openapi)."
        ) from None
    if answer.error:
        described = (
            f"{answer.error}: {answer.error_description}"
            if answer.error_description
            else answer.error
        )
        hint = f" {CODE_HINT}" if answer.error == "invalid_grant" else ""
        raise LoginFailed(f"OC refused the code (HTTP {status}): {described}.{hint}")
    if not answer.access_token:
        said = (answer.model_extra or {}).get("message")
        detail = f": {said}" if isinstance(said, str) and said else ""
        raise LoginFailed(f"OC's token answer (HTTP {status}) has no access token{detail}.")
    if not answer.refresh_token:
        raise LoginFailed(
            "OC's token answer has no refresh token; the gateway needs one to renew its "
            "access tokens."
        )
    return TokenGrant(answer.refresh_token, answer.access_token, answer.expires_in)


async def exchange_code(
    http: httpx.AsyncClient, base_url: str, client_id: str, code: str, redirect_uri: str
) -> TokenGrant:
    """Trade an authorization code for tokens at OC's token endpoint."""
    url = base_url.rstrip("/") + OAUTH_TOKEN_PATH
    query = TokenRequest.authorization_code(client_id, code, redirect_uri).to_query()
    try:
        response = await http.post(url, params=query, headers={CLIENT_KEY_HEADER: client_id})
    except httpx.HTTPError as exc:
        raise LoginFailed(
            f"could not reach OC's token endpoint {url}: {type(exc).__name__}"
        ) from None
    return read_token_answer(response.status_code, response.content)


class LoginSession:
    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        client_id: str,
        redirect_uri: str,
        *,
        listening: bool,
        inbox: asyncio.Queue[str | Arrival] | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url
        self._client_id = client_id
        self.redirect_uri = redirect_uri
        self.listening = listening
        """Whether OC's redirect comes to this process (a loopback redirect URI)."""
        self._state = new_state()
        self._inbox: asyncio.Queue[str | Arrival] = inbox if inbox is not None else asyncio.Queue()
        self._arrival: Arrival | None = None
        self.authorize_url = authorize_url(base_url, client_id, redirect_uri, self._state)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        http: httpx.AsyncClient,
        base_url: str,
        client_id: str,
        redirect_uri: str | None = None,
    ) -> AsyncIterator[LoginSession]:
        """A login for `client_id` at OC's host `base_url`. With no `redirect_uri`, the
        default loopback URI on a free port; a loopback one is listened on, any other is
        only written into the authorize URL (its redirect gets pasted)."""
        if redirect_uri is None:
            where: Loopback | None = Loopback("127.0.0.1", 0, CALLBACK_PATH)
        else:
            where = loopback(redirect_uri)
            if where is not None and where.port == 0:
                raise LoginFailed(
                    "--redirect-uri names port 0; name a port, or leave the option out to "
                    "get a free one"
                )
        if where is None:
            assert redirect_uri is not None
            yield cls(http, base_url, client_id, redirect_uri, listening=False)
            return
        inbox: asyncio.Queue[str | Arrival] = asyncio.Queue()
        async with contextlib.AsyncExitStack() as stack:
            try:
                listener = await stack.enter_async_context(
                    RedirectListener.open(where, inbox.put_nowait)
                )
            except OSError as exc:
                raise LoginFailed(
                    f"cannot listen on {where.host}:{where.port} for OC's redirect: "
                    f"{exc.strerror or exc}"
                ) from None
            uri = redirect_uri or default_redirect_uri(listener.port)
            yield cls(http, base_url, client_id, uri, listening=True, inbox=inbox)

    def paste(self, text: str) -> None:
        """Offer a pasted address (or line of input) as OC's redirect."""
        self._inbox.put_nowait(text)

    async def wait_for_code(
        self, timeout_s: float, tell: Callable[[str], None], *, pasting: bool = True
    ) -> str:
        """The code of OC's redirect to this login, from the listener or a pasted
        address. Input that is not a redirect is reported through `tell` and waited past;
        OC's refusal, another login's state, or no redirect within `timeout_s` raise
        `LoginFailed`. `pasting` says whether anyone can paste (for the error when
        nothing can arrive at all)."""
        if not self.listening and not pasting:
            raise LoginFailed(
                "nothing to wait on: the redirect URI is not a loopback address and no "
                "address can be pasted here; run with --code CODE --redirect-uri URI."
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    item = await self._inbox.get()
            except TimeoutError:
                raise LoginFailed(
                    f"no redirect from OC within {timeout_s:g} s; nothing was exchanged. "
                    "Open the address above in a browser (or paste the address the browser "
                    "was sent to), or allow more time with --timeout."
                ) from None
            arrival = item if isinstance(item, Arrival) else None
            text = item.target if isinstance(item, Arrival) else item
            if not text.strip():
                continue
            found = read_redirect(text, self._state)
            if isinstance(found, Code):
                self._arrival = arrival
                return found.code
            self._refused(found, arrival, tell)

    def _refused(
        self, refusal: Refusal, arrival: Arrival | None, tell: Callable[[str], None]
    ) -> None:
        if arrival is not None:
            title = "Login failed" if refusal.final else "Not OC's redirect"
            arrival.reply(Page(400, title, refusal.detail))
        if refusal.final:
            raise LoginFailed(refusal.detail)
        tell(refusal.detail)

    async def exchange(self, code: str) -> TokenGrant:
        """Trade the code for tokens; the waiting browser (if any) is told the outcome."""
        try:
            grant = await exchange_code(
                self._http, self._base_url, self._client_id, code, self.redirect_uri
            )
        except LoginFailed as exc:
            self._answer(Page(502, "Login failed", str(exc)))
            raise
        self._answer(
            Page(200, "Signed in to OC", "The gateway has its OC tokens. You can close this tab.")
        )
        return grant

    def _answer(self, page: Page) -> None:
        if self._arrival is not None:
            self._arrival.reply(page)

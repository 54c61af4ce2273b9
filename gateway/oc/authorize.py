"""The browser half of OC's OAuth login, pure: state, authorize URL, and OC's redirect.

OC's authorize step (oc-api README §2.1, §6.1) is `GET /oauth/authorize` with
`response_type=code`, `client_id`, `redirect_uri` and `state`; OC then sends the browser
to `redirect_uri` with the code. The names of the redirect's parameters are not published
(INFERRED: `code` and `state`, as in RFC 6749, which also names `error` and
`error_description` for a refusal). A redirect is accepted only when its `state` equals
the one this login made, compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

from schemas.oc_api import OAUTH_AUTHORIZE_PATH, AuthorizeRequest

CALLBACK_PATH: Final = "/oauth/callback"
STATE_BYTES: Final = 24


def new_state() -> str:
    """A fresh, unguessable `state` for one login (192 random bits, URL-safe)."""
    return secrets.token_urlsafe(STATE_BYTES)


def default_redirect_uri(port: int) -> str:
    return f"http://127.0.0.1:{port}{CALLBACK_PATH}"


def authorize_url(base_url: str, client_id: str, redirect_uri: str, state: str) -> str:
    """The address the user opens: OC's authorize endpoint on the configured host."""
    query = AuthorizeRequest(client_id=client_id, redirect_uri=redirect_uri, state=state)
    return base_url.rstrip("/") + OAUTH_AUTHORIZE_PATH + "?" + urlencode(query.to_query())


@dataclass(frozen=True, slots=True)
class Loopback:
    """Where to listen for a redirect URI that points at this machine."""

    host: str
    port: int
    path: str


def loopback(redirect_uri: str) -> Loopback | None:
    """The address to listen on for `redirect_uri`, or None when it is not a plain-http
    loopback address (then OC's redirect goes elsewhere and is pasted in)."""
    parts = urlsplit(redirect_uri)
    host = parts.hostname or ""
    if parts.scheme != "http" or not host:
        return None
    if host != "localhost":
        try:
            if not ipaddress.ip_address(host).is_loopback:
                return None
        except ValueError:
            return None
    try:
        port = parts.port if parts.port is not None else 80
    except ValueError:
        return None
    return Loopback(host=host, port=port, path=parts.path or "/")


@dataclass(frozen=True, slots=True)
class Code:
    """OC's redirect carried an authorization code for this login."""

    code: str


RefusalKind = Literal["oauth_error", "state_mismatch", "not_a_redirect"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """The redirect cannot be used; `kind` says why, `detail` says it to a person."""

    kind: RefusalKind
    detail: str

    @property
    def final(self) -> bool:
        """Whether the login must stop (OC refused, or the redirect belongs to another
        login); a paste that is not a redirect at all can simply be tried again."""
        return self.kind != "not_a_redirect"


def _query_of(text: str) -> str:
    text = text.strip()
    if "://" in text or text.startswith("/"):
        return urlsplit(text).query
    return text.removeprefix("?")


def read_redirect(text: str, expected_state: str) -> Code | Refusal:
    """What OC's redirect says: an address (or just its query) carrying `code` and
    `state`, or OC's `error`. A code is returned only with the expected state."""
    params = {k: v[0] for k, v in parse_qs(_query_of(text), keep_blank_values=True).items()}
    if params.get("error"):
        description = params.get("error_description", "").strip()
        detail = params["error"] + (f": {description}" if description else "")
        return Refusal("oauth_error", f"OC refused the authorization: {detail}")
    state, code = params.get("state"), params.get("code")
    if state is None and not code:
        return Refusal(
            "not_a_redirect",
            "that is not OC's redirect: it carries no code and no state (paste the whole "
            "address the browser was sent to)",
        )
    if state is None or not hmac.compare_digest(state.encode(), expected_state.encode()):
        return Refusal(
            "state_mismatch",
            "the redirect's state is not this login's (a redirect from an older login, or "
            "a forged one); nothing was exchanged",
        )
    if not code:
        return Refusal("oauth_error", "OC's redirect carries the state but no code")
    return Code(code)

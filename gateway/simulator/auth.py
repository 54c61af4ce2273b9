"""The simulated OC account's OAuth state, and the header checks of business calls.

Authorization codes live `CODE_TTL_S`, work once (the first exchange attempt uses them up)
and only with the redirect_uri they were issued for; a refused exchange says which rule it
broke. Access tokens live `token_ttl_s`; refresh tokens live a year and, when rotation is
on, die once used. The
refresh token `sim-refresh-token` is always accepted so developers can start without a
browser. Business calls carry `clientKey`, `vAuthorization` (MD5 over
path|body|clientKey|secretKey, gateway.oc.signing) and `Access-Token: Bearer <token>`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from gateway.oc.signing import CLIENT_KEY_HEADER, SIGNATURE_HEADER, oc_signature_matches

BOOTSTRAP_REFRESH_TOKEN: Final = "sim-refresh-token"
CODE_TTL_S: Final = 600.0
REFRESH_TTL_S: Final = 365 * 86400.0
ACCESS_TOKEN_HEADER: Final = "Access-Token"

TokenVerdict = Literal["ok", "missing", "malformed", "invalid", "expired"]
SignatureVerdict = Literal["ok", "missing", "wrong_client_key", "bad_signature"]


class OAuthError(Exception):
    """An OAuth refusal: `error` is the RFC 6749 code, `status` the HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


@dataclass(slots=True)
class _Code:
    redirect_uri: str
    expires: float
    used: bool = False


@dataclass(frozen=True, slots=True)
class Grant:
    access_token: str
    refresh_token: str
    expires_in: int


class AuthStore:
    def __init__(
        self,
        client_id: str,
        *,
        token_ttl_s: float = 3600.0,
        rotate_refresh_tokens: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self.token_ttl_s = token_ttl_s
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self._clock = clock
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, float] = {}
        self._refresh: dict[str, float] = {}

    def authorize(self, client_id: str, redirect_uri: str) -> str:
        """A new single-use authorization code (the user approves at once)."""
        self._check_client(client_id)
        now = self._clock()
        # Codes are remembered for a while after they expire, to say why one is refused.
        for old in [c for c, issued in self._codes.items() if issued.expires < now - CODE_TTL_S]:
            del self._codes[old]
        code = secrets.token_urlsafe(24)
        self._codes[code] = _Code(redirect_uri, now + CODE_TTL_S)
        return code

    def exchange_code(self, client_id: str, code: str, redirect_uri: str) -> Grant:
        self._check_client(client_id)
        issued = self._codes.get(code)
        if issued is None:
            raise OAuthError("invalid_grant", "authorization code is unknown")
        if issued.used:
            raise OAuthError("invalid_grant", "authorization code was already used")
        issued.used = True
        if issued.expires <= self._clock():
            raise OAuthError("invalid_grant", "authorization code has expired")
        if issued.redirect_uri != redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization")
        return self._issue(refresh_token=None)

    def expire_codes(self) -> int:
        """Make every unused authorization code expired now."""
        now = self._clock()
        unused = [issued for issued in self._codes.values() if not issued.used]
        for issued in unused:
            issued.expires = min(issued.expires, now)
        return len(unused)

    def refresh(self, client_id: str, refresh_token: str) -> Grant:
        self._check_client(client_id)
        if refresh_token != BOOTSTRAP_REFRESH_TOKEN:
            expires = self._refresh.get(refresh_token)
            if expires is None or expires < self._clock():
                raise OAuthError("invalid_grant", "refresh token is invalid or expired")
            if self.rotate_refresh_tokens:
                del self._refresh[refresh_token]
                return self._issue(refresh_token=None)
        return self._issue(refresh_token=refresh_token)

    def check_access(self, header: str | None) -> TokenVerdict:
        """Whether an `Access-Token` header value carries a live token."""
        if not header or not header.strip():
            return "missing"
        scheme, _, token = header.strip().partition(" ")
        if scheme.casefold() != "bearer" or not token.strip():
            return "malformed"
        expires = self._access.get(token.strip())
        if expires is None:
            return "invalid"
        return "ok" if expires > self._clock() else "expired"

    def expire_access_tokens(self) -> int:
        """Make every live access token expired now (refresh tokens stay valid)."""
        now = self._clock()
        for token in self._access:
            self._access[token] = min(self._access[token], now)
        return len(self._access)

    def _check_client(self, client_id: str) -> None:
        if client_id != self.client_id:
            raise OAuthError("invalid_client", "unknown client_id", status=401)

    def _issue(self, refresh_token: str | None) -> Grant:
        now = self._clock()
        access = secrets.token_urlsafe(32)
        self._access[access] = now + self.token_ttl_s
        if refresh_token is None:
            refresh_token = secrets.token_urlsafe(32)
            self._refresh[refresh_token] = now + REFRESH_TTL_S
        return Grant(access, refresh_token, max(1, round(self.token_ttl_s)))


def check_signature(
    headers: Mapping[str, str], path: str, body: bytes, client_key: str, secret_key: str
) -> SignatureVerdict:
    """OC's clientKey + vAuthorization check of one business request."""
    offered_key = headers.get(CLIENT_KEY_HEADER)
    signature = headers.get(SIGNATURE_HEADER)
    if not offered_key or not signature:
        return "missing"
    if offered_key != client_key:
        return "wrong_client_key"
    if not oc_signature_matches(signature, path, body, client_key, [secret_key]):
        return "bad_signature"
    return "ok"

"""Reading OC's answers: HTTP status, envelope and httpx errors -> a value or an `OcError`.

OC reports many failures inside HTTP 200 (`success:false` in the classic envelope;
`success:false`, `hasBusinessException` or an `errorCode` in the Return 2.0 one), so every
answer's envelope is checked, not only its status. Messages carry OC's error codes and
texts, never payloads (which may hold personal data).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import ValidationError

from gateway.errors import OcAuthError, OcError, OcRejected, OcTransient
from schemas.oc_api import parse_classic_response, parse_return2_response

RETURN2_PREFIX = "/3pp/returns/"
"""Business paths under this prefix answer the Return 2.0 envelope (oc-api README §4.2)."""

PARSE_EXTENSION = "gateway.oc.parse"
"""A business request's extension naming the parser of its answer: the auth flow, which
must look into every 2xx answer for an auth failure, parses it with that parser and leaves
the envelope on the response (`ANSWER_EXTENSION`) for `read_answer`, so the caller does
not parse it a second time."""
ANSWER_EXTENSION = "gateway.oc.answer"


_BUSY = re.compile(r"busy|try again later|temporar|稍后|繁忙", re.IGNORECASE)
"""A success:false that says OC is overloaded for now (worth a retry)."""
_LIMIT_EXCEEDED = re.compile(
    r"narrow|more than \d+|exceed|too (many|large|long|wide)|超过|超出", re.IGNORECASE
)
"""A refusal that says the query asks for too much (too many results, too long a window)."""


class OcThrottled(OcTransient):
    """OC asked the caller to slow down (HTTP 429, or a "too many requests" answer)."""


class OcLimitExceeded(OcRejected):
    """OC refused a query as too big (result cap, window length): ask for less."""


class Envelope(Protocol):
    def is_failure(self) -> bool: ...
    def is_auth_failure(self) -> bool: ...
    def is_rate_limited(self) -> bool: ...
    def error_summary(self) -> str: ...


E = TypeVar("E", bound=Envelope)


def uses_return2(path: str) -> bool:
    """Whether the business path (with or without `/openapi`) is a Return 2.0 call."""
    return RETURN2_PREFIX in path


def retry_after_s(response: httpx.Response, now: datetime | None = None) -> float | None:
    """OC's `Retry-After` in seconds (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def raise_for_status(response: httpx.Response, endpoint: str) -> None:
    """Nothing for 2xx; otherwise the `OcError` that status means."""
    status = response.status_code
    if 200 <= status < 300:
        return
    retry_after = retry_after_s(response)
    message = f"OC {endpoint} answered HTTP {status}"
    if status == 401:
        raise OcAuthError(message, endpoint=endpoint)
    if status == 429:
        raise OcThrottled(message, endpoint=endpoint, retry_after_s=retry_after)
    if status >= 500 or status == 408:
        raise OcTransient(message, endpoint=endpoint, retry_after_s=retry_after)
    raise OcRejected(message, endpoint=endpoint)


def check_envelope(envelope: Envelope, endpoint: str) -> None:
    """Nothing for a successful answer; otherwise the `OcError` the envelope means."""
    if not envelope.is_failure():
        return
    message = f"OC {endpoint} failed: {envelope.error_summary()}"
    if envelope.is_auth_failure():
        raise OcAuthError(message, endpoint=endpoint)
    if envelope.is_rate_limited():
        raise OcThrottled(message, endpoint=endpoint)
    summary = envelope.error_summary()
    if _BUSY.search(summary):
        raise OcTransient(message, endpoint=endpoint)
    if _LIMIT_EXCEEDED.search(summary):
        raise OcLimitExceeded(message, endpoint=endpoint)
    raise OcRejected(message, endpoint=endpoint)


def read_answer(response: httpx.Response, parse: Callable[[bytes], E], endpoint: str) -> E:
    """The checked envelope of a business answer, or the `OcError` it amounts to."""
    raise_for_status(response, endpoint)
    parsed = response.extensions.get(ANSWER_EXTENSION)
    try:
        envelope: E = parsed[1] if parsed and parsed[0] is parse else parse(response.content)
    except ValidationError as exc:
        raise OcRejected(
            f"OC {endpoint} answered something unreadable ({exc.error_count()} errors)",
            endpoint=endpoint,
        ) from None
    check_envelope(envelope, endpoint)
    return envelope


def is_auth_failure(request: httpx.Request, response: httpx.Response) -> bool:
    """OC refused the access token: HTTP 401, or HTTP 2xx whose envelope is a failure
    that blames authentication. The envelope is read with the request's own parser
    (`PARSE_EXTENSION`), kept on the response for `read_answer`; without one, with the
    generic parser of its envelope (classic or Return 2.0, chosen by path)."""
    if response.status_code == 401:
        return True
    if not 200 <= response.status_code < 300:
        return False
    own: Callable[[bytes], Any] | None = request.extensions.get(PARSE_EXTENSION)
    parse = own or (
        parse_return2_response if uses_return2(request.url.path) else parse_classic_response
    )
    try:
        envelope: Envelope = parse(response.content)
    except ValidationError:
        return False
    if own is not None:
        response.extensions[ANSWER_EXTENSION] = (own, envelope)
    return envelope.is_auth_failure()


def transport_error(exc: httpx.HTTPError, endpoint: str) -> OcError:
    """An httpx failure as an `OcError`: timeouts and network trouble are transient."""
    if isinstance(exc, httpx.TimeoutException):
        return OcTransient(f"OC {endpoint} timed out ({type(exc).__name__})", endpoint=endpoint)
    if isinstance(exc, httpx.TransportError):
        return OcTransient(
            f"OC {endpoint} connection failed ({type(exc).__name__})", endpoint=endpoint
        )
    return OcRejected(f"OC {endpoint} answer unusable ({type(exc).__name__})", endpoint=endpoint)

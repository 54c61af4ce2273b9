"""The gateway's exceptions. Adapters translate library errors into these at the edge.

    GatewayError
    ├── ConfigurationError            permanent: the settings cannot work (refuse to start)
    ├── CallbackRejected              permanent: a callback is refused (HTTP 4xx)
    │   ├── NotFound                  404 unknown route or callback kind
    │   ├── BodyTooLarge              413 over the size cap
    │   ├── UnsupportedMediaType      415 not JSON
    │   ├── MalformedBody             400 not UTF-8, not JSON, nested too deep
    │   ├── VerificationFailed        401 not genuine (or a replay)
    │   ├── SourceNotAllowed          403 source address outside the allow-list
    │   └── RateLimited               429 the source exceeds its rate (Retry-After)
    ├── LogError                      the log did not confirm a write or a read
    │   ├── LogUnavailable            retryable: broker unreachable, timed out
    │   └── SpoolFull                 retryable later: the spool reached its cap (503)
    ├── OcError                       OC's API failed
    │   ├── OcTransient               retryable: 5xx, 429, timeouts, connection errors
    │   ├── OcAuthError               refreshed and retried once by auth.py, then permanent
    │   ├── OcRejected                permanent: OC understood and said no (4xx, success:false)
    │   └── OcUnavailable             not now: breaker open or time budget spent
    ├── LoginFailed                   `gateway oc login` got no grant (state, code, OC, timeout)
    └── ProcessingError               permanent for this record: goes to the DLQ

`retryable` tells the one retry layer (gateway/retry.py) whether trying the same thing
again shortly can help; errors that only a later, different attempt can cure (an open
breaker, a spent budget, a refused token) are not retryable there.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""

    retryable: bool = False
    code: str = "internal"


class ConfigurationError(GatewayError):
    """The settings are inconsistent or unsafe; the gateway refuses to start."""


class CallbackRejected(GatewayError):
    """A callback is refused; `code` is a short, stable reason safe to show the caller."""

    code = "rejected"

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class NotFound(CallbackRejected):
    code = "not_found"


class BodyTooLarge(CallbackRejected):
    code = "body_too_large"


class UnsupportedMediaType(CallbackRejected):
    code = "unsupported_media_type"


class MalformedBody(CallbackRejected):
    code = "malformed_body"


class VerificationFailed(CallbackRejected):
    code = "verification_failed"


class SourceNotAllowed(CallbackRejected):
    code = "source_not_allowed"


class RateLimited(CallbackRejected):
    code = "rate_limited"


class Overloaded(CallbackRejected):
    """More callbacks in flight than the gateway takes at once; the sender retries."""

    code = "overloaded"


class LogError(GatewayError):
    """The log did not confirm an operation."""

    retryable = True


class LogUnavailable(LogError):
    """The log (Kafka) is unreachable or too slow to confirm within the deadline."""

    code = "log_unavailable"


class SpoolFull(LogError):
    """The local spool reached its size cap; callers should answer 503 with Retry-After."""

    code = "spool_full"


class OcError(GatewayError):
    """A call to OC's API failed."""

    def __init__(self, message: str, *, endpoint: str = "", retry_after_s: float | None = None):
        super().__init__(message)
        self.endpoint = endpoint
        self.retry_after_s = retry_after_s


class OcTransient(OcError):
    """A failure that may pass: 5xx, 429, timeouts, connection errors."""

    retryable = True


class OcAuthError(OcError):
    """OC refused the access token (HTTP 401, or HTTP 200 with an auth failure body).
    auth.py refreshes the token and retries once; what still fails is not retried."""


class OcRejected(OcError):
    """OC understood the request and refused it; retrying will not help."""


class OcUnavailable(OcError):
    """OC is considered down (breaker open) or the time budget for a look-up is spent:
    not retried at once; the caller tries again later (a follow-up, the next run)."""


class LoginFailed(GatewayError):
    """`gateway oc login` ended without tokens; the message says why and what to do."""

    code = "login_failed"


class ProcessingError(GatewayError):
    """A record cannot be turned into events; it goes to the dead-letter topic."""

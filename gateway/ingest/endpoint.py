"""The webhook endpoint: POST /webhooks/oc/{kind} and /webhooks/oc/{token}/{kind}.

HTTP glue only: read the size-capped raw body, hand it to `IngestService`, answer. It is
a plain ASGI app, not a Starlette route, on purpose: a callback is the one request the
gateway takes thousands of a second, and a framework's layers around it (middleware,
router, request and response objects) cost about a fifth of its CPU (bench/README.md).
Errors are raised as `GatewayError`s and turned into answers by the function app.py
gives (`Answers`), the one place errors become HTTP; every callback ends in
`IngestService.answered` (its metrics and its one log line).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from starlette.types import Message, Receive, Scope, Send

from gateway.errors import (
    BodyTooLarge,
    GatewayError,
    MalformedBody,
    NotFound,
    UnsupportedMediaType,
)
from gateway.ingest.record import KINDS, Kind
from gateway.ingest.service import IngestService
from gateway.ingest.verify import Delivery
from gateway.ops.logs import get_logger
from gateway.ops.recent import RecentDeliveries

logger = get_logger("gateway.ingest")

WEBHOOK_PATH: Final = "/webhooks/oc/"
_JSON_TYPES: Final = ("application/json", "text/json")
_JSON_HEADERS: Final = ((b"content-type", b"application/json"),)


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: status, JSON body and any extra headers (e.g. Retry-After)."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


Answers = Callable[[Exception], Answer]
"""Turns an error raised while taking a callback into its answer (app.py's mapping)."""


class MethodNotAllowed(Exception):
    """A webhook path asked with another method than POST."""


class _Disconnected(Exception):
    """The sender went away before its body arrived; there is no one to answer."""


def json_content_type(value: str) -> bool:
    media = value.split(";", 1)[0].strip().lower()
    # A missing content type is tolerated: OC's exact headers are not documented, and
    # the body is checked for JSON anyway.
    return not media or media in _JSON_TYPES or media.endswith("+json")


def signed_path(path: str) -> str:
    """The path as the sender signed it: as a URL carries it (?, # and \\ percent-encoded,
    as Starlette's `request.url.path` gives it)."""
    return path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def route(path: str) -> tuple[str | None, str | None]:
    """(kind segment, token) of a webhook path; (None, None) when it is not one of the
    two routes. Segments are non-empty and hold no slash."""
    if not path.startswith(WEBHOOK_PATH):
        return None, None
    parts = path[len(WEBHOOK_PATH) :].split("/")
    if not all(parts):
        return None, None
    if len(parts) == 1:
        return parts[0], None
    if len(parts) == 2:
        return parts[1], parts[0]
    return None, None


def _headers(scope: Scope) -> dict[str, str]:
    """Lower-case names (as ASGI servers give them) to values; the first of repeated
    headers wins."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1").lower()
        if key not in headers:
            headers[key] = value.decode("latin-1")
    return headers


async def _read_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    if declared is not None:
        try:
            size = int(declared)
        except ValueError as exc:
            raise MalformedBody("invalid Content-Length") from exc
        if size > limit:
            raise BodyTooLarge(f"body larger than {limit} bytes")
    message = await receive()
    body = message.get("body", b"")
    if message["type"] == "http.request" and not message.get("more_body", False):
        if len(body) > limit:
            raise BodyTooLarge(f"body larger than {limit} bytes")
        return bytes(body)  # the common case: one message
    chunks = bytearray(body)
    while message["type"] == "http.request" and message.get("more_body", False):
        message = await receive()
        chunks += message.get("body", b"")
        if len(chunks) > limit:
            raise BodyTooLarge(f"body larger than {limit} bytes")
    if message["type"] == "http.disconnect":
        raise _Disconnected
    return bytes(chunks)


class WebhookEndpoint:
    """The ASGI app of the webhook paths (everything under /webhooks/)."""

    def __init__(
        self,
        ingest: IngestService,
        recent: RecentDeliveries,
        max_body_bytes: int,
        answers: Answers,
    ) -> None:
        self._ingest = ingest
        self._recent = recent
        self._limit = max_body_bytes
        self._answers = answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ingest = self._ingest
        if not ingest.tracing.enabled:
            answer = await self._receive(scope, receive)
        else:
            headers = _headers(scope)
            parent = {k: v for k, v in headers.items() if k in ("traceparent", "tracestate")}
            kind, _ = route(scope["path"])
            with ingest.tracing.span(f"callback {kind}", parent=parent, kind="server"):
                answer = await self._receive(scope, receive)
        if answer is not None:
            await _send(send, answer)

    async def _receive(self, scope: Scope, receive: Receive) -> Answer | None:
        ingest = self._ingest
        started = time.perf_counter()
        segment, token = route(scope["path"])
        kind: Kind | None = KINDS.get(segment) if segment is not None else None
        client = scope.get("client")
        headers = _headers(scope)
        source = ingest.verifier.client_address(
            client[0] if client else "", headers.get("x-forwarded-for")
        )
        outcome, delivery_id, keys = "error", "", ""
        try:
            if segment is None:
                raise NotFound("Not Found")
            if scope["method"] != "POST":
                raise MethodNotAllowed
            if kind is None:
                raise NotFound("unknown callback kind")
            ingest.received(kind)
            if token is not None and not ingest.verifier.requires_path_token:
                raise NotFound("no such route")
            ingest.admit(source)
            content_type = headers.get("content-type", "")
            if not json_content_type(content_type):
                raise UnsupportedMediaType("content type must be application/json")
            body = await _read_body(receive, headers.get("content-length"), self._limit)
            delivery = Delivery(
                path=signed_path(scope["path"]),
                headers=headers,
                body=body,
                source_ip=source,
                path_token=token,
            )
            accepted = await ingest.accept(kind, delivery, content_type)
            outcome = "quarantined" if accepted.quarantined else "accepted"
            delivery_id, keys = accepted.delivery_id, ",".join(accepted.entity_keys)
            return Answer(200, accepted.body)
        except GatewayError as exc:
            outcome = exc.code
            ingest.rejected(outcome)
            return self._answers(exc)
        except MethodNotAllowed as exc:
            outcome = "method_not_allowed"
            return self._answers(exc)
        except _Disconnected:
            outcome = "disconnected"
            return None
        except Exception as exc:  # a bug: answered 500 and logged, never shown to OC
            logger.exception("callback failed unexpectedly", path=scope["path"])
            return self._answers(exc)
        finally:
            elapsed = time.perf_counter() - started
            ingest.answered(kind or "unknown", outcome, delivery_id, keys, elapsed)
            self._recent.add(kind or "unknown", outcome, delivery_id, keys, source, elapsed)


async def _send(send: Send, answer: Answer) -> None:
    headers = [
        *_JSON_HEADERS,
        (b"content-length", str(len(answer.body)).encode()),
        *answer.headers,
    ]
    start: Message = {"type": "http.response.start", "status": answer.status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": answer.body})

"""The webhook routes: POST /webhooks/oc/{kind} and /webhooks/oc/{token}/{kind}.

HTTP glue only: read the size-capped raw body, hand it to `IngestService`, answer. Errors
are raised as `CallbackRejected`/`LogError` subclasses and mapped to statuses in app.py;
every callback ends in `IngestService.answered` (its metrics and its one log line).
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope

from gateway.errors import (
    BodyTooLarge,
    GatewayError,
    MalformedBody,
    NotFound,
    UnsupportedMediaType,
)
from gateway.ingest.record import KINDS
from gateway.ingest.service import IngestService
from gateway.ingest.verify import Delivery

_JSON_TYPES = ("application/json", "text/json")


def _json_content_type(value: str) -> bool:
    media = value.split(";", 1)[0].strip().lower()
    # A missing content type is tolerated: OC's exact headers are not documented, and
    # the body is checked for JSON anyway.
    return not media or media in _JSON_TYPES or media.endswith("+json")


def _url_path(scope: Scope) -> str:
    """`request.url.path` without building the whole URL: the path as Starlette's URL
    gives it (with ?, # and \\ percent-encoded), which is what the sender signed."""
    path: str = scope["path"]
    return path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError as exc:
            raise MalformedBody("invalid Content-Length") from exc
        if size > limit:
            raise BodyTooLarge(f"body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"body larger than {limit} bytes")
    return bytes(body)


async def receive_callback(request: Request) -> Response:
    ingest: IngestService = request.state.ingest
    if not ingest.tracing.enabled:
        return await _receive(request, ingest)
    parent = {k: v for k, v in request.headers.items() if k in ("traceparent", "tracestate")}
    name = f"callback {request.path_params['kind']}"
    with ingest.tracing.span(name, parent=parent, kind="server"):
        return await _receive(request, ingest)


async def _receive(request: Request, ingest: IngestService) -> Response:
    limit: int = request.state.max_body_bytes
    started = time.perf_counter()
    kind = KINDS.get(request.path_params["kind"])
    token = request.path_params.get("token")
    peer = request.client.host if request.client else ""
    source = ingest.verifier.client_address(peer, request.headers.get("x-forwarded-for"))
    outcome, delivery_id, keys = "error", "", ""
    try:
        if kind is None:
            raise NotFound("unknown callback kind")
        ingest.received(kind)
        if token is not None and not ingest.verifier.requires_path_token:
            raise NotFound("no such route")
        ingest.admit(source)
        content_type = request.headers.get("content-type", "")
        if not _json_content_type(content_type):
            raise UnsupportedMediaType("content type must be application/json")
        body = await _read_body(request, limit)
        delivery = Delivery(
            path=_url_path(request.scope),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            source_ip=source,
            path_token=token,
        )
        accepted = await ingest.accept(kind, delivery, content_type)
        outcome = "quarantined" if accepted.quarantined else "accepted"
        delivery_id, keys = accepted.delivery_id, ",".join(accepted.entity_keys)
        return Response(accepted.body, media_type="application/json")
    except GatewayError as exc:
        outcome = exc.code
        ingest.rejected(outcome)
        raise
    finally:
        elapsed = time.perf_counter() - started
        ingest.answered(kind or "unknown", outcome, delivery_id, keys, elapsed)
        request.state.recent.add(kind or "unknown", outcome, delivery_id, keys, source, elapsed)


def routes() -> list[Route]:
    return [
        Route("/webhooks/oc/{kind}", receive_callback, methods=["POST"]),
        Route("/webhooks/oc/{token}/{kind}", receive_callback, methods=["POST"]),
    ]

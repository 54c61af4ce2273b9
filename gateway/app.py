"""The ASGI apps: `create_app` (webhooks + health) and `create_ops_app` (metrics + health,
and the operator console at /console when its token is set).

Run with `uvicorn --factory gateway.app:create_app --lifespan on`, or `gateway serve`,
which also serves the ops app on the metrics port. Errors become HTTP answers here and
nowhere else: short JSON bodies with a stable code, never a secret or a stack trace.
"""

from __future__ import annotations

import json
import math

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.console.app import console_app
from gateway.errors import (
    BodyTooLarge,
    CallbackRejected,
    ConfigurationError,
    GatewayError,
    LogError,
    MalformedBody,
    NotFound,
    Overloaded,
    RateLimited,
    SourceNotAllowed,
    SpoolFull,
    UnsupportedMediaType,
    VerificationFailed,
)
from gateway.ingest.endpoint import Answer, MethodNotAllowed, WebhookEndpoint
from gateway.ingest.overload import WEBHOOK_PREFIX_TEXT, AdmissionMiddleware
from gateway.lifespan import Gateway
from gateway.ops.health import health_routes, metrics_routes
from gateway.settings import Settings

_STATUS: dict[type[GatewayError], int] = {
    NotFound: 404,
    BodyTooLarge: 413,
    UnsupportedMediaType: 415,
    MalformedBody: 400,
    VerificationFailed: 401,
    SourceNotAllowed: 403,
    RateLimited: 429,
    Overloaded: 503,
    SpoolFull: 503,
    LogError: 503,
}
_SPOOL_RETRY_AFTER_S = 30
_STORAGE_RETRY_AFTER_S = 5


def _answer(status: int, code: str, message: str, retry_after_s: float | None = None) -> Answer:
    document = {"error": code, "message": message}
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    if retry_after_s is None:
        return Answer(status, body)
    return Answer(status, body, ((b"retry-after", str(max(1, math.ceil(retry_after_s))).encode()),))


def answer_for(exc: Exception) -> Answer:
    """The answer to a request that raised `exc`: a short JSON body with a stable code,
    never a secret or a stack trace."""
    if isinstance(exc, GatewayError):
        status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 500)
        if isinstance(exc, CallbackRejected):
            return _answer(status, exc.code, exc.message, exc.retry_after_s)
        if isinstance(exc, SpoolFull):
            return _answer(status, exc.code, "spool full; retry later", _SPOOL_RETRY_AFTER_S)
        if isinstance(exc, LogError):
            return _answer(
                status, exc.code, "storage unavailable; retry later", _STORAGE_RETRY_AFTER_S
            )
    if isinstance(exc, MethodNotAllowed):
        return _answer(405, "method_not_allowed", "Method Not Allowed")
    if isinstance(exc, HTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _answer(exc.status_code, code, str(exc.detail))
    return _answer(500, "internal", "internal error")


async def _error(request: Request, exc: Exception) -> Response:
    answer = answer_for(exc)
    headers = {name.decode(): value.decode() for name, value in answer.headers}
    return Response(answer.body, answer.status, headers=headers, media_type="application/json")


class GatewayApp:
    """The webhook port's ASGI app: callbacks go straight to the webhook endpoint (behind
    admission), everything else (health, metrics) to a Starlette app."""

    def __init__(self, gateway: Gateway, other: Starlette, webhooks: ASGIApp | None) -> None:
        self.gateway = gateway
        self.other = other
        self._webhooks = webhooks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self._webhooks is not None
            and scope["type"] == "http"
            and scope["path"].startswith(WEBHOOK_PREFIX_TEXT)
        ):
            await self._webhooks(scope, receive, send)
        else:
            await self.other(scope, receive, send)


def create_app(settings: Settings | None = None, gateway: Gateway | None = None) -> GatewayApp:
    """The webhook app. With no arguments it reads settings from the environment. The
    console is never served here: with its token set, the metrics port must be its own."""
    gateway = gateway or Gateway(settings or Settings())
    if gateway.settings.console_enabled and gateway.settings.metrics_port == 0:
        raise ConfigurationError(
            "the console is served on the metrics port only, never on the webhook port: "
            "set GATEWAY_METRICS_PORT, or unset GATEWAY_CONSOLE_TOKEN(_FILE)"
        )
    routes = [*health_routes()]
    if gateway.settings.metrics_port == 0:
        routes.extend(metrics_routes())
    other = Starlette(
        routes=routes,
        lifespan=gateway.lifespan,
        exception_handlers={GatewayError: _error, HTTPException: _error, Exception: _error},
    )
    other.state.gateway = gateway
    webhooks: ASGIApp | None = None
    if gateway.settings.ingest_enabled:
        ingest = gateway.ingest
        endpoint = WebhookEndpoint(
            ingest, gateway.recent, gateway.settings.max_body_bytes, answer_for
        )
        webhooks = AdmissionMiddleware(endpoint, ingest.admission, ingest.refused)
    return GatewayApp(gateway, other, webhooks)


def create_ops_app(gateway: Gateway) -> Starlette:
    """Metrics and health on their own port, sharing the webhook app's gateway; the
    console too, when its token is set."""
    routes: list[BaseRoute] = [*metrics_routes(), *health_routes()]
    if gateway.settings.console_enabled:
        routes.append(Mount("/console", app=console_app(gateway)))
    app = Starlette(routes=routes)
    app.state.gateway = gateway
    return app

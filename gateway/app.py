"""The ASGI apps: `create_app` (webhooks + health) and `create_ops_app` (metrics + health,
and the operator console at /console when its token is set).

Run with `uvicorn --factory gateway.app:create_app --lifespan on`, or `gateway serve`,
which also serves the ops app on the metrics port. Errors become HTTP answers here and
nowhere else: short JSON bodies with a stable code, never a secret or a stack trace.
"""

from __future__ import annotations

import math

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount

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
from gateway.ingest.overload import AdmissionMiddleware
from gateway.ingest.routes import routes as ingest_routes
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


def _error(status: int, code: str, message: str, retry_after_s: float | None = None) -> Response:
    headers = {}
    if retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    return JSONResponse({"error": code, "message": message}, status, headers=headers)


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 500)
    if isinstance(exc, CallbackRejected):
        return _error(status, exc.code, exc.message, exc.retry_after_s)
    if isinstance(exc, SpoolFull):
        return _error(status, exc.code, "spool full; retry later", _SPOOL_RETRY_AFTER_S)
    if isinstance(exc, LogError):
        return _error(status, exc.code, "storage unavailable; retry later", 5)
    return _error(500, "internal", "internal error")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return _error(exc.status_code, code, str(exc.detail), None)


async def _unexpected(request: Request, exc: Exception) -> Response:
    return _error(500, "internal", "internal error")


def create_app(settings: Settings | None = None, gateway: Gateway | None = None) -> Starlette:
    """The webhook app. With no arguments it reads settings from the environment. The
    console is never served here: with its token set, the metrics port must be its own."""
    gateway = gateway or Gateway(settings or Settings())
    if gateway.settings.console_enabled and gateway.settings.metrics_port == 0:
        raise ConfigurationError(
            "the console is served on the metrics port only, never on the webhook port: "
            "set GATEWAY_METRICS_PORT, or unset GATEWAY_CONSOLE_TOKEN(_FILE)"
        )
    routes = [*health_routes()]
    if gateway.settings.ingest_enabled:
        routes.extend(ingest_routes())
    if gateway.settings.metrics_port == 0:
        routes.extend(metrics_routes())
    ingest = gateway.ingest
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                AdmissionMiddleware,
                admission=ingest.admission,
                refused=ingest.refused,
            )
        ],
        lifespan=gateway.lifespan,
        exception_handlers={
            GatewayError: _gateway_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
    app.state.gateway = gateway
    return app


def create_ops_app(gateway: Gateway) -> Starlette:
    """Metrics and health on their own port, sharing the webhook app's gateway; the
    console too, when its token is set."""
    routes: list[BaseRoute] = [*metrics_routes(), *health_routes()]
    if gateway.settings.console_enabled:
        routes.append(Mount("/console", app=console_app(gateway)))
    app = Starlette(routes=routes)
    app.state.gateway = gateway
    return app

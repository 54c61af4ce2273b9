"""/livez, /readyz and /metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.ops.metrics import Metrics


async def livez(request: Request) -> Response:
    """The process serves requests. Nothing else is checked: a restart cures nothing more."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The gateway accepts callbacks: the log takes writes and it is not shutting down."""
    if await request.app.state.gateway.ready():
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "not ready"}, status_code=503)


async def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.gateway.metrics
    return Response(registry.exposition(), media_type=CONTENT_TYPE_LATEST)


def health_routes() -> list[Route]:
    return [Route("/livez", livez), Route("/readyz", readyz)]


def metrics_routes() -> list[Route]:
    return [Route("/metrics", metrics)]

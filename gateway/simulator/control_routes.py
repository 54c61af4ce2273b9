"""The simulator's own control API under /_sim (never faulted, never authenticated).

- GET  /_sim/stats, POST /_sim/stats/reset: request counters per endpoint and outcome.
- GET  /_sim/faults, POST /_sim/faults (partial JSON; `outage_for_s` is a shorthand for
  `outage_until`), POST /_sim/faults/reset.
- POST /_sim/callbacks/next?count=N[&kind=outbound|return|inventory][&status=S]: advance
  the world and return the callbacks OC would send, bodies as exact strings (for a
  separate sender). `status` (one of OC's outbound order statuses, e.g. `In-delivery`;
  case, spaces and `-` do not matter) makes each one about a new order taken to it.
- POST /_sim/tokens/expire: expire every access token now (refresh tokens stay valid).
- POST /_sim/codes/expire: expire every unused authorization code now.
- GET  /_sim/world: a summary; GET /_sim/orders/{orderNumber}: one order as OC sees it.
"""

from __future__ import annotations

from typing import Any, Final, get_args

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.simulator.entities import order_status
from gateway.simulator.payloads import order_json
from gateway.simulator.state import Simulator
from schemas.callbacks import CallbackKind

MAX_CALLBACKS_PER_CALL: Final = 10_000


def _sim(request: Request) -> Simulator:
    simulator: Simulator = request.app.state.simulator
    return simulator


async def stats(request: Request) -> Response:
    return JSONResponse(_sim(request).stats.snapshot())


async def reset_stats(request: Request) -> Response:
    sim = _sim(request)
    sim.stats.reset()
    return JSONResponse(sim.stats.snapshot())


async def faults(request: Request) -> Response:
    sim = _sim(request)
    if request.method == "GET":
        return JSONResponse(sim.faults.settings.model_dump(mode="json"))
    try:
        changes: Any = await request.json()
    except ValueError:
        return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
    if not isinstance(changes, dict):
        return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
    try:
        settings = sim.update_faults(changes)
    except (ValidationError, ValueError, TypeError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(settings.model_dump(mode="json"))


async def reset_faults(request: Request) -> Response:
    return JSONResponse(_sim(request).reset_faults().model_dump(mode="json"))


async def next_callbacks(request: Request) -> Response:
    sim = _sim(request)
    try:
        count = int(request.query_params.get("count", "1"))
    except ValueError:
        count = -1
    kind = request.query_params.get("kind") or None
    if not 0 <= count <= MAX_CALLBACKS_PER_CALL:
        return JSONResponse({"error": f"count must be 0..{MAX_CALLBACKS_PER_CALL}"}, 400)
    if kind is not None and kind not in get_args(CallbackKind):
        return JSONResponse({"error": f"kind must be one of {get_args(CallbackKind)}"}, 400)
    status = request.query_params.get("status") or None
    if status is not None:
        if kind not in (None, "outbound"):
            return JSONResponse({"error": "status picks outbound callbacks only"}, 400)
        try:
            status = order_status(status)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
    callbacks = sim.next_callbacks(count, kind, status)  # type: ignore[arg-type]  # checked
    return JSONResponse({"callbacks": [c.to_json() for c in callbacks]})


async def expire_tokens(request: Request) -> Response:
    return JSONResponse({"expired": _sim(request).auth.expire_access_tokens()})


async def expire_codes(request: Request) -> Response:
    return JSONResponse({"expired": _sim(request).auth.expire_codes()})


async def world(request: Request) -> Response:
    sim = _sim(request)
    return JSONResponse({**sim.world.summary(), "faults": sim.faults.settings.model_dump()})


async def order(request: Request) -> Response:
    found = _sim(request).world.orders.get(request.path_params["order_number"])
    if found is None:
        return JSONResponse({"error": "no such order"}, status_code=404)
    return JSONResponse(order_json(found, with_consignee=True))


def control_routes() -> list[Route]:
    return [
        Route("/_sim/stats", stats, methods=["GET"]),
        Route("/_sim/stats/reset", reset_stats, methods=["POST"]),
        Route("/_sim/faults", faults, methods=["GET", "POST"]),
        Route("/_sim/faults/reset", reset_faults, methods=["POST"]),
        Route("/_sim/callbacks/next", next_callbacks, methods=["POST"]),
        Route("/_sim/tokens/expire", expire_tokens, methods=["POST"]),
        Route("/_sim/codes/expire", expire_codes, methods=["POST"]),
        Route("/_sim/world", world, methods=["GET"]),
        Route("/_sim/orders/{order_number}", order, methods=["GET"]),
    ]

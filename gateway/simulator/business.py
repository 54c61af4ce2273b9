"""One simulated OC business endpoint: faults, signature, token, handler, envelope, counters.

Order of checks per request: added latency; an injected fault (503 outage, 429 with
Retry-After, 500, or HTTP 200 + success:false "busy"); the clientKey + vAuthorization
signature (required on classic endpoints; on Return 2.0 checked only when sent, since
OC's own Return 2.0 samples leave it out); the `Access-Token: Bearer` token (HTTP 200 +
success:false, or HTTP 401, per the `token_failure` setting); then the handler.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.oc.signing import CLIENT_KEY_HEADER, SIGNATURE_HEADER
from gateway.simulator.answers import (
    BUSY_MESSAGE,
    Answer,
    Fail,
    classic_response,
    return2_response,
)
from gateway.simulator.api import BadRequest, Call
from gateway.simulator.auth import ACCESS_TOKEN_HEADER, check_signature
from gateway.simulator.data import World
from gateway.simulator.faults import Fault
from gateway.simulator.state import Simulator
from schemas.oc_api import BUSINESS_PREFIX, OUTBOUND_QUERY_MAX_RESULTS

Handler = Callable[[World, Call], Answer]

_SIGNATURE_MESSAGES = {
    "missing": "clientKey and vAuthorization headers are required",
    "wrong_client_key": "clientKey is invalid",
    "bad_signature": "vAuthorization signature verification failed",
}
_TOKEN_MESSAGES = {
    "missing": "Access token is missing",
    "malformed": "Access-Token must be 'Bearer <access_token>'",
    "invalid": "Access token is invalid",
    "expired": "Access token has expired",
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    method: Literal["GET", "POST"]
    path: str  # below /openapi
    handler: Handler
    envelope: Literal["classic", "return2"] = "classic"
    needs_token: bool = True


def _message_id(body: bytes) -> str | None:
    try:
        document = json.loads(body) if body else None
    except ValueError:
        return None
    value = document.get("messageId") if isinstance(document, dict) else None
    return str(value) if value is not None else None


def _wrap(sim: Simulator, endpoint: Endpoint, answer: Answer, message_id: str | None) -> Response:
    if endpoint.envelope == "return2":
        return return2_response(answer, sim.next_request_id())
    return classic_response(answer, message_id)


def _fault_response(sim: Simulator, endpoint: Endpoint, fault: Fault, mid: str | None) -> Response:
    retry = {"Retry-After": str(fault.retry_after_s)} if fault.retry_after_s is not None else {}
    if fault.kind == "outage":
        return PlainTextResponse("503 Service Unavailable", status_code=503, headers=retry)
    if fault.kind == "fault_500":
        return HTMLResponse("<html><body><h1>500 Internal Server Error</h1></body></html>", 500)
    if fault.kind == "rate_limited":
        answer = Fail("rate_limited", "Too many requests, please slow down", status=429)
        response = _wrap(sim, endpoint, answer, mid)
        response.headers.update(retry)
        return response
    return _wrap(sim, endpoint, Fail("fault_success_false", BUSY_MESSAGE), mid)


def _check(sim: Simulator, endpoint: Endpoint, request: Request, body: bytes) -> Fail | None:
    headers = request.headers
    sent = CLIENT_KEY_HEADER in headers or SIGNATURE_HEADER in headers
    if endpoint.envelope == "classic" or sent:
        verdict = check_signature(
            headers, request.url.path, body, sim.config.client_key, sim.config.secret_key
        )
        if verdict != "ok":
            return Fail("signature_failure", _SIGNATURE_MESSAGES[verdict])
    if endpoint.needs_token:
        token = sim.auth.check_access(headers.get(ACCESS_TOKEN_HEADER))
        if token != "ok":
            status = 401 if sim.faults.settings.token_failure == "http_401" else 200
            return Fail("auth_failure", _TOKEN_MESSAGES[token], status=status)
    return None


async def _answer(sim: Simulator, endpoint: Endpoint, request: Request) -> Response:
    body = await request.body()
    message_id = _message_id(body)
    delay = sim.faults.latency_s(endpoint.name)
    if delay > 0:
        await asyncio.sleep(delay)
    fault = sim.faults.decide(endpoint.name)
    if fault is not None:
        sim.stats.record(endpoint.name, fault.kind)
        return _fault_response(sim, endpoint, fault, message_id)
    answer: Answer | None = _check(sim, endpoint, request, body)
    if answer is None:
        query = {key: request.query_params.getlist(key) for key in request.query_params}
        limit = sim.faults.settings.order_list_limit or OUTBOUND_QUERY_MAX_RESULTS
        call = Call(
            body=body,
            now=sim.world.now(),
            query=query,
            max_ids=min(limit, OUTBOUND_QUERY_MAX_RESULTS),
        )
        try:
            answer = endpoint.handler(sim.world, call)
        except BadRequest as exc:
            answer = Fail("bad_request", str(exc))
    sim.stats.record(endpoint.name, answer.outcome, ids=answer.ids, skus=answer.skus)
    return _wrap(sim, endpoint, answer, message_id)


def business_route(endpoint: Endpoint) -> Route:
    async def respond(request: Request) -> Response:
        simulator: Simulator = request.app.state.simulator
        return await _answer(simulator, endpoint, request)

    return Route(BUSINESS_PREFIX + endpoint.path, respond, methods=[endpoint.method])

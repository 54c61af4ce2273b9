"""OC's OAuth host, simulated: GET /oauth/authorize and POST /oauth/token.

The authorize step approves at once and redirects to `redirect_uri` with `code` and
`state`. The token endpoint reads every parameter from the query string (as OC's curl
samples send them) and answers RFC 6749 JSON: the tokens, or `{error,
error_description}` with HTTP 400 (401 for an unknown client). Faults apply here too.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.simulator.answers import BUSY_MESSAGE
from gateway.simulator.auth import Grant, OAuthError
from gateway.simulator.state import Simulator
from schemas.oc_api import OAUTH_AUTHORIZE_PATH, OAUTH_TOKEN_PATH


def _error(exc: OAuthError) -> JSONResponse:
    body = {"error": exc.error, "error_description": exc.description}
    return JSONResponse(body, status_code=exc.status)


async def _fault(sim: Simulator, endpoint: str) -> Response | None:
    delay = sim.faults.latency_s(endpoint)
    if delay > 0:
        await asyncio.sleep(delay)
    fault = sim.faults.decide(endpoint)
    if fault is None:
        return None
    sim.stats.record(endpoint, fault.kind)
    retry = {"Retry-After": str(fault.retry_after_s)} if fault.retry_after_s is not None else {}
    if fault.kind == "fault_success_false":
        return JSONResponse({"error": "server_error", "error_description": BUSY_MESSAGE})
    text = {"outage": "503 Service Unavailable", "rate_limited": "429 Too Many Requests"}
    return PlainTextResponse(text.get(fault.kind, "500 Internal Server Error"), fault.status, retry)


async def authorize(request: Request) -> Response:
    sim: Simulator = request.app.state.simulator
    if (faulty := await _fault(sim, "oauth_authorize")) is not None:
        return faulty
    params = request.query_params
    missing = [
        p for p in ("response_type", "client_id", "redirect_uri", "state") if not params.get(p)
    ]
    try:
        if missing:
            raise OAuthError("invalid_request", f"missing parameters: {', '.join(missing)}")
        if params["response_type"] != "code":
            raise OAuthError("unsupported_response_type", "response_type must be code")
        code = sim.auth.authorize(params["client_id"], params["redirect_uri"])
    except OAuthError as exc:
        sim.stats.record("oauth_authorize", exc.error)
        return _error(exc)
    sim.stats.record("oauth_authorize", "ok")
    target = urlsplit(params["redirect_uri"])
    query = "&".join(
        q for q in (target.query, urlencode({"code": code, "state": params["state"]})) if q
    )
    return RedirectResponse(urlunsplit(target._replace(query=query)), status_code=302)


def _grant(sim: Simulator, request: Request) -> Grant:
    params = request.query_params
    grant_type, client_id = params.get("grant_type"), params.get("client_id")
    if not client_id:
        raise OAuthError("invalid_request", "client_id is required")
    if grant_type == "authorization_code":
        code, redirect_uri = params.get("code"), params.get("redirect_uri")
        if not code or not redirect_uri:
            raise OAuthError("invalid_request", "code and redirect_uri are required")
        return sim.auth.exchange_code(client_id, code, redirect_uri)
    if grant_type == "refresh_token":
        refresh_token = params.get("refresh_token")
        if not refresh_token:
            raise OAuthError("invalid_request", "refresh_token is required")
        return sim.auth.refresh(client_id, refresh_token)
    raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")


async def token(request: Request) -> Response:
    sim: Simulator = request.app.state.simulator
    if (faulty := await _fault(sim, "oauth_token")) is not None:
        return faulty
    try:
        grant = _grant(sim, request)
    except OAuthError as exc:
        sim.stats.record("oauth_token", exc.error)
        return _error(exc)
    sim.stats.record("oauth_token", f"ok_{request.query_params.get('grant_type')}")
    return JSONResponse(
        {
            "access_token": grant.access_token,
            "token_type": "bearer",
            "expires_in": grant.expires_in,
            "refresh_token": grant.refresh_token,
        },
        headers={"Cache-Control": "no-store"},
    )


def oauth_routes() -> list[Route]:
    return [
        Route(OAUTH_AUTHORIZE_PATH, authorize, methods=["GET"]),
        Route(OAUTH_TOKEN_PATH, token, methods=["POST"]),
    ]

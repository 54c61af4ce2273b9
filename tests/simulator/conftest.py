"""Fixtures of the simulator tests: the simulator and a scriptable receiver, each served by
uvicorn on a free 127.0.0.1 port in the test session's event loop, and an OC client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.simulator.app import create_app, simulator_of
from gateway.simulator.data import WorldSize
from gateway.simulator.signing import oc_request_headers
from gateway.simulator.state import Simulator, SimulatorConfig
from tests.simulation import serving

CLIENT_KEY = "test-client-key"
SECRET_KEY = "test-secret-key"
DEADLINE_S = 10.0


@dataclass
class RunningSimulator:
    url: str
    app: Starlette

    @property
    def sim(self) -> Simulator:
        return simulator_of(self.app)


@pytest.fixture(scope="session")
async def simulator() -> AsyncIterator[RunningSimulator]:
    config = SimulatorConfig(
        seed=42,
        client_key=CLIENT_KEY,
        secret_key=SECRET_KEY,
        world_size=WorldSize(skus=60, orders=200, returns=30),
    )
    app = create_app(config)
    async with serving(app) as url:
        yield RunningSimulator(url, app)


@dataclass
class OcClient:
    """A minimal, test-only OC client: signs requests and carries a token."""

    http: httpx.AsyncClient
    base: str
    token: str | None = None

    async def fetch_token(self, refresh_token: str = "sim-refresh-token") -> str:
        response = await self.http.post(
            f"{self.base}/oauth/token",
            params={
                "client_id": CLIENT_KEY,
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
            },
        )
        assert response.status_code == 200, response.text
        self.token = response.json()["access_token"]
        return self.token

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Any = None,
        sign: bool = True,
        token: str | bool | None = True,
        secret: str = SECRET_KEY,
    ) -> httpx.Response:
        """`path` below /openapi; `token=True` uses the fetched token, a str that token,
        False/None none."""
        full = "/openapi" + path
        raw = b"" if body is None else json.dumps(body).encode()
        access = self.token if token is True else (token or None)
        headers = oc_request_headers(full, raw, CLIENT_KEY, secret, access)
        if not sign:
            headers = {k: v for k, v in headers.items() if k not in ("clientKey", "vAuthorization")}
        return await self.http.request(
            method, self.base + full, content=raw or None, params=params, headers=headers
        )


@pytest.fixture
async def oc(simulator: RunningSimulator) -> AsyncIterator[OcClient]:
    """A client with a fresh token; the simulator's faults and counters are reset after."""
    async with httpx.AsyncClient(timeout=10) as http:
        client = OcClient(http, simulator.url)
        await client.fetch_token()
        try:
            yield client
        finally:
            simulator.sim.reset_faults()
            simulator.sim.stats.reset()


@dataclass
class Receiver:
    """A scriptable callback receiver: records every request, answers via `respond`."""

    url: str = ""
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    respond: Callable[[int], int] = field(default=lambda _: 200)

    def statuses_for(self, path: str) -> int:
        return sum(1 for p, _, _ in self.requests if p == path)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()

    async def receive(request: Request) -> Response:
        body = await request.body()
        state.requests.append((request.url.path, dict(request.headers), body))
        status = state.respond(len(state.requests))
        return JSONResponse({"code": 0, "success": status < 300}, status_code=status)

    app = Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])
    async with serving(app) as url:
        state.url = url
        yield state

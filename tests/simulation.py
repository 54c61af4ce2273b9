"""The OC simulator (and any ASGI app) served on a real 127.0.0.1 socket for tests,
and `Sim`, a handle that drives it only through its HTTP control API."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from asgi_lifespan import LifespanManager
from starlette.types import ASGIApp

from gateway.app import create_app as create_gateway_app
from gateway.lifespan import Gateway
from gateway.settings import Settings
from gateway.simulator.app import create_app
from gateway.simulator.auth import BOOTSTRAP_REFRESH_TOKEN
from gateway.simulator.state import SimulatorConfig
from tests.waiting import wait_for


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """Serve `app` on a free 127.0.0.1 port; yields its base URL; stops it on exit."""
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose
    # protocol says TCP, and without it every response waits out a delayed ACK (~40 ms).
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", access_log=False, ws="none", http="h11"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        await wait_for(lambda: server.started or task.done())
        if task.done():
            task.result()
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        listener.close()


@dataclass
class Sim:
    """The running simulator, driven only through its HTTP control API."""

    url: str
    control: httpx.AsyncClient

    async def faults(self, **changes: Any) -> None:
        response = await self.control.post("/_sim/faults", json=changes)
        response.raise_for_status()

    async def reset(self) -> None:
        for path in ("/_sim/faults/reset", "/_sim/stats/reset"):
            (await self.control.post(path)).raise_for_status()

    async def stats(self) -> dict[str, Any]:
        response = await self.control.get("/_sim/stats")
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats

    async def count(self, endpoint: str, outcome: str | None = None) -> int:
        entry = (await self.stats())["endpoints"].get(endpoint)
        if entry is None:
            return 0
        return int(entry["requests"] if outcome is None else entry["outcomes"].get(outcome, 0))

    async def expire_tokens(self) -> None:
        (await self.control.post("/_sim/tokens/expire")).raise_for_status()

    async def callbacks(self, count: int, kind: str) -> list[bytes]:
        response = await self.control.post(
            "/_sim/callbacks/next", params={"count": count, "kind": kind}
        )
        response.raise_for_status()
        return [c["body"].encode() for c in response.json()["callbacks"]]


def oc_client_settings(sim: Sim, client_key: str, secret_key: str) -> dict[str, Any]:
    """Settings that point the gateway's OC client at `sim` with the simulator's key
    pair; it starts from the refresh token the simulator always accepts."""
    return {
        "oc_base_url": sim.url,
        "oc_client_key": client_key,
        "oc_secret_key": secret_key,
        "oc_refresh_token": BOOTSTRAP_REFRESH_TOKEN,
    }


# Enrichment on a test's clock: OC look-ups give up and follow-ups come within seconds.
QUICK_ENRICHMENT: dict[str, Any] = {
    "oc_rate_limit_per_s": 200.0,
    "oc_total_timeout_s": 3.0,
    "enrich_timeout_s": 1.0,
    "enrich_followup_delay_s": 0.3,
}


@asynccontextmanager
async def running_simulator(config: SimulatorConfig) -> AsyncIterator[Sim]:
    """A simulator built from `config`, served on a free port, with a control client."""
    async with (
        serving(create_app(config)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as control,
    ):
        yield Sim(url, control)


@asynccontextmanager
async def gateway_on_socket(settings: Settings) -> AsyncIterator[tuple[str, Gateway]]:
    """The gateway with its lifespan started, served on a real 127.0.0.1 port."""
    gateway = Gateway(settings)
    app = create_gateway_app(gateway=gateway)
    async with (
        LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager,
        serving(manager.app) as url,
    ):
        yield url, gateway

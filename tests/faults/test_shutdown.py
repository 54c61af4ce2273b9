"""What SIGTERM does to a `gateway serve` process, as Kubernetes sends it.

Readiness answers 503 at once, while requests already in flight still finish; and when
the processor's batch outlasts the shutdown grace, the batch is given up (another member
redoes it, Kafka's transactions keep that exactly-once) and the process still closes
everything it opened and exits 0 within the grace plus a few seconds.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from gateway.simulator.app import create_app
from gateway.simulator.data import WorldSize
from gateway.simulator.state import SimulatorConfig
from tests.conftest import unique_topics
from tests.helpers import outbound_callback, wait_for
from tests.processes import GatewayProcess, kafka_env, log_lines, trouble
from tests.simulation import Sim, serving

pytestmark = pytest.mark.slow
CLIENT_KEY = "shutdown-client-key"
SECRET_KEY = "shutdown-secret-key"


def _send_half(port: int, path: str, body: bytes) -> socket.socket:
    """A request whose body has only half arrived: in flight until the rest is sent."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    conn.sendall(head.encode() + body[: len(body) // 2])
    return conn


async def test_readiness_turns_false_as_soon_as_sigterm_arrives(tmp_path: Path) -> None:
    gateway = GatewayProcess(
        {"GATEWAY_DATA_DIR": str(tmp_path / "data"), "GATEWAY_PATH_TOKENS": "t0k"},
        tmp_path / "gateway.log",
    )
    await asyncio.to_thread(gateway.start)
    body = outbound_callback("OCO0000000000077GB", "SHIPPED", message_id="in-flight")
    conn = await asyncio.to_thread(_send_half, gateway.port, "/webhooks/oc/t0k/outbound", body)
    async with httpx.AsyncClient(base_url=gateway.metrics_url, timeout=5.0) as client:
        assert (await client.get("/readyz")).status_code == 200
        assert gateway.process is not None
        signalled = time.monotonic()
        gateway.process.terminate()  # SIGTERM

        async def unready() -> bool:
            return (await client.get("/readyz")).status_code == 503

        await wait_for(unready, timeout_s=5.0, every_s=0.01)
        took = time.monotonic() - signalled
        assert gateway.process.poll() is None  # still draining the request in flight
    conn.sendall(body[len(body) // 2 :])
    answer = await asyncio.to_thread(conn.recv, 4096)
    conn.close()
    assert answer.startswith(b"HTTP/1.1 200")  # the request it had taken is answered
    assert await asyncio.to_thread(gateway.process.wait, 30) == 0
    assert took < 2.0  # at once: the first probes after the signal, not a timeout later


@pytest.mark.kafka
async def test_a_batch_outlasting_the_grace_is_given_up_and_everything_closed(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    config = SimulatorConfig(
        seed=11, client_key=CLIENT_KEY, secret_key=SECRET_KEY, world_size=WorldSize(orders=40)
    )
    oc = create_app(config)
    asked = asyncio.Event()  # OC was asked something: the processor is inside a batch

    async def observed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_sim"):
            asked.set()
        await oc(scope, receive, send)

    async with (
        serving(observed) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as control,
    ):
        sim = Sim(url, control)
        bodies = await sim.callbacks(20, "outbound")
        await sim.faults(latency_ms=6_000)  # every look-up outlasts the grace
        env = kafka_env(tmp_path / "data", kafka_bootstrap, unique_topics(uuid.uuid4().hex[:8]))
        env |= {
            "GATEWAY_SHUTDOWN_GRACE_S": "1",
            "GATEWAY_ENRICH_TIMEOUT_S": "60",
            "GATEWAY_OC_TOTAL_TIMEOUT_S": "60",
            "GATEWAY_OC_TIMEOUT_S": "60",
            "GATEWAY_OC_BASE_URL": sim.url,
            "GATEWAY_OC_CLIENT_KEY": CLIENT_KEY,
            "GATEWAY_OC_SECRET_KEY": SECRET_KEY,
            "GATEWAY_OC_REFRESH_TOKEN": "sim-refresh-token",
            "GATEWAY_VERIFY_OC_SIGNATURE": "false",
            "GATEWAY_RECONCILE_ENABLED": "false",
        }
        gateway = GatewayProcess(env, tmp_path / "gateway.log")
        await asyncio.to_thread(gateway.start)
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10.0) as client:
            for body in bodies:
                response = await client.post(
                    "/webhooks/oc/test-token/outbound",
                    content=body,
                    headers={"content-type": "application/json"},
                )
                assert response.status_code == 200

        await asyncio.wait_for(asked.wait(), timeout=60)
        started = time.monotonic()
        code = await asyncio.to_thread(gateway.terminate, 30.0)
        took = time.monotonic() - started

    assert code == 0
    assert took < 1 + 10  # the grace, then at most a few seconds to unwind and close
    lines = log_lines(gateway.log_path)
    (spent,) = [line for line in lines if line["event"] == "shutdown grace spent; cancelling"]
    assert spent["tasks"] == ["processor"]
    # Where it was stuck: in the batch, waiting for OC's enrichment.
    assert any("enrich" in frame for frame in spent["waiting_in"]["processor"])
    assert trouble(gateway.log_path) == []  # no "Unclosed", no "shutdown failed"

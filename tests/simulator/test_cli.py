"""`gateway simulate serve` and `gateway simulate send` as separate processes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from gateway.oc.signing import oc_signature_matches

from .conftest import Receiver, RunningSimulator

pytestmark = pytest.mark.slow
STARTUP_S = 30.0  # a cold interpreter importing the gateway, on a busy CI machine


def _env(**values: str) -> dict[str, str]:
    """A clean environment: no GATEWAY_* from the developer's shell leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return env | values


@asynccontextmanager
async def _process(*args: str, env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "simulate",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), STARTUP_S)


async def test_serve_prints_its_url_and_serves_oc() -> None:
    env = _env(GATEWAY_OC_CLIENT_KEY="cli-key", GATEWAY_OC_SECRET_KEY="cli-secret")
    async with _process("serve", "--port", "0", "--seed", "5", "--down", env=env) as process:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), STARTUP_S)).decode()
        assert line.startswith("OC simulator serving on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1].strip()
        async with httpx.AsyncClient(timeout=5) as http:
            faults = (await http.get(url + "/_sim/faults")).json()
            assert faults["down"] is True
            await http.post(url + "/_sim/faults", json={"down": False})
            token = await http.post(
                url + "/oauth/token",
                params={
                    "client_id": "cli-key",
                    "grant_type": "refresh_token",
                    "refresh_token": "sim-refresh-token",
                },
            )
            assert token.status_code == 200
            assert (await http.get(url + "/_sim/world")).json()["seed"] == 5
    assert process.returncode is not None


async def test_send_prints_one_json_report(receiver: Receiver) -> None:
    env = _env(GATEWAY_OC_CLIENT_KEY="send-key", GATEWAY_OC_SECRET_KEY="send-secret")
    target = f"{receiver.url}/webhooks/oc/outbound"
    args = ("send", "--target", target, "--count", "12", "--rate", "0", "--json", "--seed", "3")
    async with _process(*args, env=env) as process:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    lines = stdout.decode().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert (report["accepted"], report["sent"], report["requested"]) == (12, 12, 12)
    assert report["signing"] == ["oc_signature"]
    assert set(report["latencyMs"]) == {"p50", "p90", "p99", "p99.9", "max", "mean"}
    for path, headers, body in receiver.requests:
        assert oc_signature_matches(
            headers["vauthorization"], path, body, "send-key", ["send-secret"]
        )


async def test_send_takes_callbacks_from_a_simulator_and_honours_settings(
    receiver: Receiver, simulator: RunningSimulator
) -> None:
    env = _env(
        GATEWAY_OC_CLIENT_KEY="k",
        GATEWAY_OC_SECRET_KEY="s",
        GATEWAY_VERIFY_OC_SIGNATURE="false",
        GATEWAY_WEBHOOK_SECRETS="whsec_c2VjcmV0LWZvci10aGUtc2VuZGVyLXRlc3Rz",
    )
    receiver.respond = lambda n: 200 if n % 2 else 400
    args = (
        "send",
        "--target",
        f"{receiver.url}/webhooks/oc/{{kind}}",
        "--count",
        "6",
        "--rate",
        "0",
        "--concurrency",
        "1",
        "--kind",
        "return",
        "--simulator",
        simulator.url,
    )
    async with _process(*args, env=env) as process:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    text = stdout.decode()
    assert "accepted  3   rejected 3   failed 0" in text
    assert "signing: standard_webhooks" in text
    for path, headers, body in receiver.requests:
        assert path == "/webhooks/oc/returns"
        assert "vauthorization" not in headers
        return_number = json.loads(body)["data"][0]["returnNumber"]
        assert return_number in simulator.sim.world.returns


async def test_send_picks_an_oc_status(receiver: Receiver, simulator: RunningSimulator) -> None:
    env = _env(GATEWAY_OC_CLIENT_KEY="k", GATEWAY_OC_SECRET_KEY="s")
    target = f"{receiver.url}/webhooks/oc/{{kind}}"
    args = ("send", "--target", target, "--count", "4", "--rate", "0", "--json")
    for status in ("In-delivery", "undeliverable RETURN"):
        receiver.requests.clear()
        async with _process(*args, "--status", status, "--simulator", simulator.url, env=env) as p:
            stdout, stderr = await asyncio.wait_for(p.communicate(), 60)
        assert p.returncode == 0, stderr.decode()
        assert json.loads(stdout)["accepted"] == 4
        sent = [json.loads(body)["data"][0] for _, _, body in receiver.requests]
        assert {path for path, _, _ in receiver.requests} == {"/webhooks/oc/outbound"}
        spelled = "In-delivery" if status == "In-delivery" else "Undeliverable return"
        assert {item["status"] for item in sent} == {spelled}  # in OC's own spelling
        for item in sent:  # and the simulator's look-ups say the same
            assert simulator.sim.world.orders[item["orderNumber"]].status == spelled
    async with _process(*args, "--status", "SHIPPED", env=env) as process:
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert "not one of OC's order statuses" in stderr.decode()
    async with _process(*args, "--status", "Packed", "--kind", "return", env=env) as process:
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert "outbound callbacks only" in stderr.decode()

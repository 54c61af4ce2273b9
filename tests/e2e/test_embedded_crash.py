"""The embedded log keeps every acknowledged callback through a SIGKILL.

A real `gateway serve` process takes callbacks from concurrent senders and is killed
with SIGKILL mid-stream. After a restart on the same data directory, every callback
that got a success answer is in the raw log, and the processor publishes its event.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import httpx

from gateway.log.sqlite import SqliteLog
from tests.helpers import outbound_callback, wait_for
from tests.processes import GatewayProcess

SENDERS = 6
KILL_AFTER_ACKS = 150


async def send_until_killed(url: str, acked: set[str], killed: asyncio.Event) -> None:
    async def sender(n: int) -> None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            i = 0
            while not killed.is_set():
                body = outbound_callback(f"OCO{n:03d}{i:09d}GB", "SHIPPED", message_id=f"{n}-{i}")
                i += 1
                try:
                    response = await client.post(
                        url, content=body, headers={"content-type": "application/json"}
                    )
                except httpx.HTTPError:
                    continue  # the process is gone: no answer, so nothing was promised
                if response.status_code == 200:
                    acked.add("sha256:" + hashlib.sha256(body).hexdigest())

    await asyncio.gather(*(sender(n) for n in range(SENDERS)))


async def test_acknowledged_callbacks_survive_sigkill(tmp_path: Path) -> None:
    env = {
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_PATH_TOKENS": "test-token",
        "GATEWAY_TOPIC_RAW": "raw",
        "GATEWAY_TOPIC_OUTBOUND": "outbound",
    }
    gateway = GatewayProcess(env, tmp_path / "gateway.log")
    gateway.start()
    acked: set[str] = set()
    killed = asyncio.Event()
    senders = asyncio.create_task(
        send_until_killed(f"{gateway.url}/webhooks/oc/test-token/outbound", acked, killed)
    )

    async def enough_acked() -> bool:
        return len(acked) >= KILL_AFTER_ACKS

    await wait_for(enough_acked, timeout_s=60)
    gateway.kill()  # mid-stream: senders are still posting
    killed.set()
    await senders

    gateway.start()  # same data directory
    log = SqliteLog(tmp_path / "data" / "log.sqlite3")
    await log.start()
    try:
        raw = [r async for r in log.read("raw")]
        stored = {(r.header("gw-delivery-id") or b"").decode() for r in raw}
        missing = acked - stored
        assert not missing, f"{len(missing)} acknowledged callbacks lost"

        async def all_published() -> bool:
            events = [r async for r in log.read("outbound")]
            return len(events) >= len(stored)

        await wait_for(all_published, timeout_s=60)
    finally:
        await log.close()
        assert gateway.terminate() == 0

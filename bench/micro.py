"""`python -m bench.micro`: the webhook app's own CPU per callback, in process.

Drives the ASGI app with raw ASGI calls (no sockets, no HTTP parser, no load tool), a
fixed number of callbacks in flight, on the embedded log or on Kafka (`--bootstrap`),
processor off. CPU is the process's (event loop plus the SQLite and producer work), so
the number moves only with the code: a steadier yardstick than a load run on a shared
machine for before/after comparisons of one change.

    python -m bench.micro --log embedded --callbacks 20000
    python -m bench.micro --log kafka --bootstrap 127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.services import CLIENT_KEY, SECRET_KEY, topics_env
from gateway.app import create_app
from gateway.lifespan import Gateway
from gateway.oc.signing import oc_signature
from gateway.ops.logs import configure_logging
from gateway.settings import Settings
from gateway.simulator.data import World

_PATH = "/webhooks/oc/outbound"


def _scope(body: bytes) -> dict[str, Any]:
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"clientkey", CLIENT_KEY.encode()),
        (b"vauthorization", oc_signature(_PATH, body, CLIENT_KEY, SECRET_KEY).encode()),
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": _PATH,
        "raw_path": _PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }


async def _call(app: Any, state: dict[str, Any], body: bytes) -> int:
    scope = {**_scope(body), "state": dict(state)}
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # a disconnect never comes
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def run(
    bootstrap: str, callbacks: int, in_flight: int, data_dir: Path, rounds: int = 3
) -> dict[str, Any]:
    topics = topics_env(uuid.uuid4().hex[:8]).items()
    values: dict[str, Any] = {k.removeprefix("GATEWAY_").lower(): v for k, v in topics}
    values |= {
        "data_dir": data_dir,
        "kafka_bootstrap_servers": bootstrap,
        "oc_client_key": CLIENT_KEY,
        "oc_secret_key": SECRET_KEY,
        "processor_enabled": False,
        "rate_limit_per_source": 1e9,
        "rate_limit_burst": 1_000_000_000,
        "metrics_port": 0,
        # In flight by construction (and as fast as it goes): admission would refuse
        # most of them, which is not what this measures.
        "admission_lag_target_ms": 1e9,
        "max_callbacks_in_flight": 1_000_000,
    }
    settings = Settings.model_validate(values)
    bodies = [c.body for c in World(7).next_callbacks(callbacks * rounds + 200, "outbound")]
    gateway = Gateway(settings)
    app = create_app(gateway=gateway)
    await gateway.start()
    state = gateway.request_state()
    try:
        for body in bodies[:200]:  # warm-up
            await _call(app, state, body)
        codes: dict[int, int] = {}
        # Rounds of fresh bodies; the least CPU of them is the figure (the rest is noise
        # from whatever else the machine does).
        results = []
        for n in range(rounds):
            queue = iter(bodies[200 + n * callbacks : 200 + (n + 1) * callbacks])

            async def worker(queue: Any = queue) -> None:
                for body in queue:
                    code = await _call(app, state, body)
                    codes[code] = codes.get(code, 0) + 1

            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(in_flight)))
            results.append((time.process_time() - cpu, time.perf_counter() - wall))
    finally:
        await gateway.stop()
    cpu, wall = min(results)
    return {
        "log": "kafka" if bootstrap else "embedded",
        "callbacks": callbacks,
        "in_flight": in_flight,
        "codes": codes,
        "cpu_us_per_callback": round(cpu / callbacks * 1e6, 1),
        "cpu_us_per_callback_rounds": [round(c / callbacks * 1e6, 1) for c, _ in results],
        "callbacks_per_s": round(callbacks / wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__)
    parser.add_argument("--bootstrap", default="", help="Kafka; empty: the embedded log")
    parser.add_argument("--callbacks", type=int, default=20_000)
    parser.add_argument("--in-flight", type=int, default=64)
    args = parser.parse_args(argv)
    import uvloop

    # The per-callback log line is part of the cost: rendered as in production, but
    # written to /dev/null rather than a terminal.
    real_stdout = sys.stdout
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as devnull:
        sys.stdout = devnull
        try:
            configure_logging("info")
            result = uvloop.run(run(args.bootstrap, args.callbacks, args.in_flight, Path(tmp)))
        finally:
            sys.stdout = real_stdout
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

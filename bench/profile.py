"""`python -m bench profile`: the gateway under pyinstrument while vegeta loads it.

Starts the simulator (50 ms OC latency), a broker for --log kafka, and `gateway serve`
under pyinstrument; sends callbacks at a fixed rate, waits until every accepted one's
event is out, stops the gateway with SIGTERM (pyinstrument then writes its report) and
prints the step's figures and the report's path.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from bench import benchmark
from bench.services import Gateway, GatewayConfig, simulator
from tools.kafka_broker import Broker, start_broker


async def run(mode: str, rate: int, seconds: float, out: Path, vegeta_path: Path) -> dict[str, Any]:
    plan = benchmark.Plan(modes=(mode,), references=False)
    sim, sim_url = simulator(out, plan.seed, plan.oc_latency_ms)
    await asyncio.to_thread(sim.start)
    broker: Broker | None = None
    try:
        if mode.startswith("kafka"):
            broker = await asyncio.to_thread(start_broker, out / "kafka")
        ctx = benchmark.Context(plan, out, vegeta_path, sim_url, broker)
        config = GatewayConfig(
            data_dir=out / f"data-{mode}",
            suffix=f"{mode}-{uuid.uuid4().hex[:8]}",
            bootstrap=broker.bootstrap if broker else None,
            oc_url=sim_url,
        )
        if mode in benchmark.INGEST_ONLY:
            config.extra["GATEWAY_PROCESSOR_ENABLED"] = "false"
        report = out / f"profile-{mode}-{rate}.txt"
        gateway = Gateway(config, out / f"gateway-{mode}.log", profile=report)
        await asyncio.to_thread(gateway.start)
        try:
            async with benchmark.reader_running(mode, config, config.bootstrap) as watching:
                pids = [gateway.pid]
                await benchmark.step(ctx, gateway, pids, watching, "warmup", 200, 2.0)
                figures = await benchmark.step(
                    ctx, gateway, pids, watching, f"p-{rate}", rate, seconds
                )
        finally:
            await asyncio.to_thread(gateway.stop, 60.0)
        return {"report": str(report), **figures}
    finally:
        if broker is not None:
            await asyncio.to_thread(broker.stop)
        await asyncio.to_thread(sim.stop)

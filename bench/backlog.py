"""The backlog step: how fast a processor works off what piled up while it was away.

OC retries what it could not deliver, and a processor may be down or behind while ingest
keeps taking callbacks; either way the processor then meets a backlog. The step runs the
split deployment's ingest alone, offers it `Plan.backlog_callbacks` at a fixed rate, then
starts a processor and times how long, from its start, until a read_committed reader has
every accepted callback's event, with the OC calls that took and how many events went out
without their enrichment.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import vegeta
from bench.audit import audit, enrichment_mix
from bench.services import Gateway, GatewayConfig, split_configs
from bench.topics import SeenDeliveries

if TYPE_CHECKING:
    from bench.benchmark import Context


async def run(ctx: Context, config: GatewayConfig, out: Path) -> dict[str, Any]:
    """Fill the backlog through ingest alone, then time a processor working it off."""
    from bench import benchmark  # the step's helpers; benchmark imports this module

    plan = ctx.plan
    rate, seconds = plan.backlog_rate, plan.backlog_callbacks / plan.backlog_rate
    ingest_config, processor_config = split_configs(config)
    ingest = Gateway(ingest_config, out / "gateway-backlog-ingest.log")
    processor = Gateway(processor_config, out / "gateway-backlog-processor.log")
    await asyncio.to_thread(ingest.start)
    try:
        async with benchmark.reader_running(benchmark.SPLIT, config, config.bootstrap) as watching:
            assert watching is not None
            path, callbacks = await asyncio.to_thread(
                benchmark.targets,
                ctx,
                "backlog",
                f"{ingest.url}/webhooks/oc/outbound",
                rate,
                seconds,
            )
            delivery = {c.message_id: c.delivery_id for c in callbacks}
            bodies = {c.delivery_id: c.body for c in callbacks}
            attack = vegeta.Attack("backlog", rate, seconds)
            result = await asyncio.to_thread(vegeta.run, ctx.vegeta, attack, path, ctx.out)
            sent_at = {delivery[m]: at for m, at in result.accepted().items()}
            oc_before = await asyncio.to_thread(benchmark.sim_requests, ctx.simulator_url)
            started = time.monotonic()  # the drain counts the processor's start-up too
            await asyncio.to_thread(processor.start)
            start_s = time.monotonic() - started
            seen = SeenDeliveries(watching.reader.records, bodies)
            drained = await watching.wait_for(lambda: seen.covers(sent_at), plan.catch_up_timeout_s)
            drain_s = time.monotonic() - started
            oc_calls = (
                await asyncio.to_thread(benchmark.sim_requests, ctx.simulator_url) - oc_before
            )
            records = watching.reader.records
            checked = audit(sent_at, bodies, records, "-")
    finally:
        for gateway in (processor, ingest):
            await asyncio.to_thread(gateway.stop, 60.0)
    accepted = len(sent_at)
    return {
        "mode": benchmark.SPLIT,
        "offered_per_s": rate,
        "accepted": accepted,
        "drained": drained,
        "processor_start_s": round(start_s, 1),
        "drain_s": round(drain_s, 1),
        "drained_per_s": round(accepted / drain_s) if drain_s > 0 else None,
        "oc_calls": oc_calls,
        "oc_calls_per_1000": round(oc_calls * 1000 / accepted, 1) if accepted else None,
        "enrichment": enrichment_mix(r for r in records if r.delivery_id in sent_at),
        "missing": checked.missing,
        "duplicates": checked.duplicates,
    }

"""The churn run of `make faults`: replicas that come and go under steady load.

Three gateway replicas on one broker share the processor's consumer group; vegeta sends
OC-signed callbacks at a fixed rate, one connection each, through a round-robin TCP
balancer (bench/balancer.py, the harness's kube-proxy). Meanwhile, at fixed fractions of
the run:

- a rolling restart as the chart's Deployment does it (maxSurge 1, maxUnavailable 0): a
  new replica starts and becomes ready, then an old one leaves the balancer and gets
  SIGTERM; the next one only when it exited;
- a SIGKILL, after which the replica is started again in place (same data directory and
  ports, as the kubelet restarts a crashed container in its pod);
- a scale-up to four replicas, then a scale-down to two (both SIGTERMed at once).

It is audited as the other fault runs (nothing missing, nothing twice, each entity's
order kept). Each replica's RSS and open file descriptors are sampled every second, with
the processor's producers and partitions from its /metrics, so a leak shows as a slope
and as producers above partitions; its output is searched for `Unclosed` and ERROR lines.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench import vegeta
from bench.audit import (
    ENRICHED_TYPES,
    audit,
    duplicate_copies,
    enrichment_mix,
    followed_up,
    log_findings,
    sent_timing,
    status_events,
)
from bench.fleet import Fleet, Replica
from bench.services import simulator
from bench.stats import per_second, slope
from bench.targets import fetch_callbacks, payload_bytes, write_targets
from bench.topics import KafkaReader, Quiet, SeenDeliveries, Watching
from tools.kafka_broker import Broker

OC_LATENCY_MS = 50.0


@dataclass(frozen=True)
class ChurnPlan:
    rate: int = 100
    seconds: float = 300.0
    replicas: int = 3
    # When each step begins, as fractions of `seconds` (a step that runs long delays
    # the next one; the load keeps its rate throughout).
    rolling_restart_at: float = 0.10
    sigkill_at: float = 0.45
    scale_up_at: float = 0.60
    scale_down_at: float = 0.80
    sample_every_s: float = 1.0
    settle_timeout_s: float = 300.0

    def shortened(self, seconds: float) -> ChurnPlan:
        return replace(self, seconds=seconds)


QUICK_SECONDS = 75.0


async def _rolling_restart(fleet: Fleet) -> None:
    fleet.mark("rolling restart")
    for old in list(fleet.live):
        new = await fleet.add()
        await fleet.terminate(old, "SIGTERM (rolling restart)")
        print(f"[churn] {old.name} -> {new.name}", flush=True)
    fleet.mark("restart done")


async def _sigkill(fleet: Fleet) -> None:
    await fleet.kill_and_restart(fleet.live[0])


async def _scale_up(fleet: Fleet) -> None:
    await fleet.add()
    fleet.mark(f"scaled to {len(fleet.live)}")


async def _scale_down(fleet: Fleet, to: int) -> None:
    leaving = fleet.live[: len(fleet.live) - to]
    await asyncio.gather(*(fleet.terminate(r, "SIGTERM (scale-down)") for r in leaving))
    fleet.mark(f"scaled to {len(fleet.live)}")


async def _churn(fleet: Fleet, plan: ChurnPlan, started: float) -> None:
    steps: tuple[tuple[float, Callable[[], Awaitable[None]]], ...] = (
        (plan.rolling_restart_at, lambda: _rolling_restart(fleet)),
        (plan.sigkill_at, lambda: _sigkill(fleet)),
        (plan.scale_up_at, lambda: _scale_up(fleet)),
        (plan.scale_down_at, lambda: _scale_down(fleet, plan.replicas - 1)),
    )
    for at, step in steps:
        # A load schedule, not a wait for a condition: each step begins at a fixed time.
        await asyncio.sleep(max(0.0, started + at * plan.seconds - time.time()))
        await step()


def _figures(values: list[tuple[float, float]], scale: float) -> dict[str, float | None]:
    if not values:
        return {"first": None, "last": None, "max": None, "slope_per_min": None}
    per_s = slope(values)
    return {
        "first": round(values[0][1] / scale, 1),
        "last": round(values[-1][1] / scale, 1),
        "max": round(max(v for _, v in values) / scale, 1),
        "slope_per_min": None if per_s is None else round(per_s * 60 / scale, 2),
    }


def replica_report(replica: Replica, origin: float) -> dict[str, Any]:
    samples = replica.samples
    last = samples[-1] if samples else None
    return {
        "name": replica.name,
        "started_s": round(replica.started_at - origin, 1),
        "ended_s": None if replica.ended_at is None else round(replica.ended_at - origin, 1),
        "end": replica.end,
        "exit_code": replica.exit_code,
        "restarts": replica.restarts,
        "samples": len(samples),
        "rss_mb": _figures([(s.at, s.rss_bytes) for s in samples], 2**20),
        "fds": _figures([(s.at, s.fds) for s in samples], 1),
        "producers_last": None if last is None else last.producers,
        "partitions_last": None if last is None else last.partitions,
        "series": {
            "t": [round(s.at - origin, 1) for s in samples],
            "rss_mb": [round(s.rss_bytes / 2**20, 1) for s in samples],
            "fds": [s.fds for s in samples],
        },
        **log_findings(replica.service.log_path),
    }


async def run_churn(
    plan: ChurnPlan, out: Path, vegeta_path: Path, broker: Broker
) -> dict[str, Any]:
    run_dir = out / "churn"
    sim, sim_url = simulator(run_dir, 7, OC_LATENCY_MS)
    await asyncio.to_thread(sim.start)
    suffix = f"churn-{uuid.uuid4().hex[:8]}"
    fleet = Fleet(run_dir, suffix, broker.bootstrap, sim_url, plan.sample_every_s)
    try:
        async with fleet:
            for _ in range(plan.replicas):
                await fleet.add()
            section = await _load_and_audit(plan, run_dir, vegeta_path, broker, fleet, sim_url)
            final = list(fleet.live)
        # Leaving the fleet SIGTERMed the last replicas; now their logs are complete.
        origin = section.pop("origin")
        section["replicas"] = [replica_report(r, origin) for r in fleet.all]
        section["balancer"] = {
            "connections": {
                r.name: fleet.balancer.connections.get(r.service.port, 0) for r in fleet.all
            },
            "refused": fleet.balancer.refused,
        }
        section["final_replicas"] = [r.name for r in final]
        return section
    finally:
        await asyncio.to_thread(sim.stop)


async def _load_and_audit(
    plan: ChurnPlan, run_dir: Path, vegeta_path: Path, broker: Broker, fleet: Fleet, sim_url: str
) -> dict[str, Any]:
    count = int(plan.rate * plan.seconds * 1.02) + 50
    callbacks = await asyncio.to_thread(fetch_callbacks, sim_url, count)
    targets = run_dir / "targets.jsonl"
    url = f"{fleet.balancer.url}/webhooks/oc/outbound"
    await asyncio.to_thread(write_targets, targets, url, callbacks)
    delivery = {c.message_id: c.delivery_id for c in callbacks}
    keys = {c.delivery_id: c.entity_key for c in callbacks}
    bodies = {c.delivery_id: c.body for c in callbacks}
    env = fleet.config("any").env(0, 0)
    raw, outbound = env["GATEWAY_TOPIC_RAW"], env["GATEWAY_TOPIC_OUTBOUND"]
    reader = KafkaReader(
        broker.bootstrap, [raw, outbound, env["GATEWAY_TOPIC_INVENTORY"]], frozenset({outbound})
    )
    attack = vegeta.Attack("churn", plan.rate, plan.seconds, workers=32, keepalive=False)
    async with Watching(reader) as watching:
        process = vegeta.start(vegeta_path, attack, targets, run_dir)
        started = time.time()
        print(f"[churn] {plan.rate}/s for {plan.seconds:.0f} s", flush=True)
        await _churn(fleet, plan, started)
        await asyncio.to_thread(process.wait)
        result = await asyncio.to_thread(vegeta.collect, vegeta_path, attack, run_dir)
        accepted = {delivery[m]: at for m, at in result.accepted().items()}
        progress = SeenDeliveries(reader.records, bodies)
        settled = await watching.wait_for(
            lambda: progress.covers(accepted) and followed_up(reader.records),
            plan.settle_timeout_s,
        )
        settled_at = time.time()
        await watching.wait_for(Quiet(reader.records, 3.0), 60.0)
    seen = {d: r.at for d, r in status_events(reader.records).items()}
    timing = sent_timing(result.answers, delivery, keys)
    checked = audit(accepted, bodies, reader.records, raw, timing)
    return {
        "log": "kafka",
        "rate": plan.rate,
        "duration_s": plan.seconds,
        "plan": asdict(plan),
        "codes": result.codes,
        "settled": settled,
        "settle_s": round(settled_at - (started + plan.seconds), 1),
        "audit": checked.as_dict(),
        "duplicates_seen": duplicate_copies(reader.records, started),
        "enrichment": enrichment_mix(r for r in reader.records if r.delivery_id in accepted),
        "recovery_s": {},
        "marks": {k: round(v - started, 2) for k, v in fleet.marks.items()},
        "origin": started,
        "per_second": {
            "accepted": per_second((a.sent_at + a.latency_s for a in result.ok()), started),
            "refused": per_second(
                (a.sent_at + a.latency_s for a in result.answers if a.code != 200), started
            ),
            "published": per_second(seen.values(), started),
            "enriched": per_second(
                (r.at for r in reader.records if r.ce_type in ENRICHED_TYPES), started
            ),
        },
        "payload_bytes": payload_bytes([len(c.body) for c in callbacks]),
    }

"""`make faults`: break things under load, then audit what OC was told against the topics.

Each scenario runs the gateway (on Kafka, or on the embedded log) with the simulator as
OC (50 ms latency), sends OC-signed callbacks with vegeta at a fixed rate, applies its
fault at fixed times after the load started, waits (polling, with a deadline) until
every accepted callback's event is visible, and audits with an independent reader
(audit.py): a read_committed consumer, or a read-only connection to the SQLite file.

- broker-kill: the broker is SIGKILLed and restarted; ingest answers from the spool.
- gateway-sigkill: the gateway is SIGKILLed and restarted at once on the same ports.
- oc-down: OC answers 503 for a minute; events go out marked not (fully) enriched and the
  follow-up `*.enriched` events come once OC is back.
- spool-full: the broker is killed with a small spool cap; once the spool is full the
  gateway answers 503; the broker comes back, the spool drains, 200s resume.
- disk-full: the embedded gateway's data directory is a small tmpfs (bench/disk.py); the
  harness fills it, the gateway answers 503 and its processor waits, then the harness
  deletes the filler and everything resumes without a restart.
- churn: three replicas through a rolling restart, a SIGKILL, a scale-up and a
  scale-down (bench/churn.py).

Every audit also checks each entity's order: a callback sent after another of its
entity's was answered must come after it in the raw and typed topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

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
from bench.churn import QUICK_SECONDS, ChurnPlan, run_churn
from bench.disk import Disk, tmpfs
from bench.services import Gateway, GatewayConfig, simulator
from bench.stats import per_second
from bench.targets import fetch_callbacks, payload_bytes, write_targets
from bench.topics import KafkaReader, Quiet, Reader, SeenDeliveries, SqliteReader, Watching
from tools.kafka_broker import Broker, start_broker

OC_LATENCY_MS = 50.0


@dataclass
class Run:
    """What a scenario's actions need, and the times they noted."""

    name: str
    broker: Broker | None
    gateway: Gateway
    simulator_url: str
    disk: Disk | None = None
    started: float = 0.0
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, label: str) -> None:
        self.marks[label] = time.time()


Action = Callable[[Run], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    name: str
    rate: int
    seconds: float
    actions: tuple[tuple[float, Action], ...]  # (seconds after the load started, action)
    gateway_env: tuple[tuple[str, str], ...] = ()
    settle_timeout_s: float = 300.0
    log: str = "kafka"  # or "embedded"
    disk_bytes: int | None = None  # the data directory on a tmpfs of this size


async def _kill_broker(run: Run) -> None:
    assert run.broker is not None
    await asyncio.to_thread(run.broker.kill)
    run.mark("broker killed")


async def _restart_broker(run: Run) -> None:
    assert run.broker is not None
    await asyncio.to_thread(run.broker.restart)
    run.mark("broker back")


async def _fill_disk(run: Run) -> None:
    assert run.disk is not None
    await asyncio.to_thread(run.disk.fill)
    run.mark("disk full")


async def _free_disk(run: Run) -> None:
    assert run.disk is not None
    await asyncio.to_thread(run.disk.free)
    run.mark("disk freed")


async def _kill_gateway(run: Run) -> None:
    await asyncio.to_thread(run.gateway.kill)
    run.mark("gateway killed")
    await asyncio.to_thread(run.gateway.start, 120.0)
    run.mark("gateway ready")


def _oc_down(seconds: float) -> Action:
    async def act(run: Run) -> None:
        async with httpx.AsyncClient(base_url=run.simulator_url) as client:
            response = await client.post("/_sim/faults", json={"outage_for_s": seconds})
            response.raise_for_status()
        run.mark("OC down")
        run.marks["OC back"] = time.time() + seconds

    return act


def scenarios(quick: bool = False) -> dict[str, Scenario]:
    """The five runs; `quick` shortens them for the test suite's smoke run."""
    q = 0.25 if quick else 1.0
    return {
        s.name: s
        for s in (
            Scenario(
                "broker-kill",
                200,
                45 * q,
                ((10 * q, _kill_broker), (25 * q, _restart_broker)),
                (("GATEWAY_KAFKA_APPEND_TIMEOUT_S", "1.0"),),
            ),
            Scenario("gateway-sigkill", 200, 30 * q, ((10 * q, _kill_gateway),)),
            Scenario(
                "oc-down",
                100,
                90 * q,
                ((10 * q, _oc_down(60 * q)),),
                settle_timeout_s=600.0,
            ),
            Scenario(
                "spool-full",
                100,
                40 * q,
                ((5 * q, _kill_broker), (25 * q, _restart_broker)),
                (("GATEWAY_SPOOL_MAX_BYTES", "600000"), ("GATEWAY_KAFKA_APPEND_TIMEOUT_S", "1.0")),
            ),
            Scenario(
                "disk-full",
                100,
                40 * q,
                ((10 * q, _fill_disk), (25 * q, _free_disk)),
                log="embedded",
                disk_bytes=64 * 2**20,
            ),
        )
    }


SCENARIOS = scenarios()
NAMES = sorted([*SCENARIOS, "churn"])  # churn runs several replicas: bench/churn.py


async def _act(run: Run, actions: tuple[tuple[float, Action], ...]) -> None:
    for at, action in sorted(actions, key=lambda a: a[0]):
        # A load schedule, not a wait for a condition: the fault happens at a fixed time.
        await asyncio.sleep(max(0.0, run.started + at - time.time()))
        await action(run)


_FAULT_MARKS = {  # scenario -> (the mark the fault began at, the mark it ended at)
    "broker-kill": ("broker killed", "broker back"),
    "gateway-sigkill": ("gateway killed", "gateway killed"),
    "oc-down": ("OC down", "OC back"),
    "spool-full": ("broker killed", "broker back"),
    "disk-full": ("disk full", "disk freed"),
}


def answers_200_again(answers: list[vegeta.Answer], start: float) -> float | None:
    """When 200s came back for good: the first 200 answered to a request sent after the last
    refusal since `start` (a few 200s among the first refusals, while a cap is being crossed,
    are not a recovery). None when nothing was refused or nothing was accepted after."""
    refused = [a.sent_at for a in answers if a.code != 200 and a.sent_at >= start]
    if not refused:
        return None
    last = max(refused)
    later = [a.sent_at + a.latency_s for a in answers if a.code == 200 and a.sent_at > last]
    return min(later) if later else None


def _recovery(
    name: str,
    run: Run,
    accepted: dict[str, float],
    answers: list[vegeta.Answer],
    seen: dict[str, float],
) -> dict[str, float]:
    """Seconds from the end of the fault to: 200s again, and every event published."""
    start_label, end_label = _FAULT_MARKS[name]
    end = run.marks.get(end_label)
    if end is None:
        return {}
    out: dict[str, float] = {}
    if name in ("gateway-sigkill", "spool-full", "disk-full"):
        again = answers_200_again(answers, run.marks.get(start_label, end))
        if again is not None:
            out["answers_200_again"] = round(again - end, 2)
    before = [seen[d] for d, at in accepted.items() if at <= end and d in seen]
    if before:
        out["events_caught_up"] = round(max(0.0, max(before) - end), 2)
    return out


async def run_scenario(
    scenario: Scenario, out: Path, vegeta_path: Path, broker: Broker | None
) -> dict[str, Any]:
    run_dir = out / scenario.name
    sim, sim_url = simulator(run_dir, 7, OC_LATENCY_MS)
    await asyncio.to_thread(sim.start)
    suffix = f"{scenario.name}-{uuid.uuid4().hex[:8]}"
    bootstrap = broker.bootstrap if broker is not None and scenario.log == "kafka" else None
    data_dir = run_dir / "data"
    config = GatewayConfig(data_dir, suffix, bootstrap, sim_url, dict(scenario.gateway_env))
    gateway = Gateway(config, run_dir / "gateway.log")
    mounts = contextlib.ExitStack()
    try:
        disk: Disk | None = None
        if scenario.disk_bytes is not None:
            disk = mounts.enter_context(tmpfs(data_dir, scenario.disk_bytes))
        await asyncio.to_thread(gateway.start)
        count = int(scenario.rate * scenario.seconds * 1.02) + 50
        callbacks = await asyncio.to_thread(fetch_callbacks, sim_url, count)
        targets = run_dir / "targets.jsonl"
        await asyncio.to_thread(
            write_targets, targets, f"{gateway.url}/webhooks/oc/outbound", callbacks
        )
        delivery = {c.message_id: c.delivery_id for c in callbacks}
        keys = {c.delivery_id: c.entity_key for c in callbacks}
        bodies = {c.delivery_id: c.body for c in callbacks}
        env = config.env(0, 0)
        raw, outbound = env["GATEWAY_TOPIC_RAW"], env["GATEWAY_TOPIC_OUTBOUND"]
        topics = [raw, outbound, env["GATEWAY_TOPIC_INVENTORY"]]
        reader: Reader
        if bootstrap is not None:
            reader = KafkaReader(bootstrap, topics, frozenset({outbound}))
        else:
            reader = SqliteReader(data_dir / "log.sqlite3", topics, frozenset({outbound}))
        attack = vegeta.Attack(
            scenario.name, scenario.rate, scenario.seconds, workers=32, timeout_s=10.0
        )
        state = Run(scenario.name, broker, gateway, sim_url, disk)
        async with Watching(reader) as watching:
            process = vegeta.start(vegeta_path, attack, targets, run_dir)
            state.started = time.time()
            print(f"[{scenario.name}] {scenario.rate}/s for {scenario.seconds:.0f} s", flush=True)
            await _act(state, scenario.actions)
            await asyncio.to_thread(process.wait)
            result = await asyncio.to_thread(vegeta.collect, vegeta_path, attack, run_dir)
            accepted = {delivery[m]: at for m, at in result.accepted().items()}
            progress = SeenDeliveries(reader.records, bodies)
            settled = await watching.wait_for(
                lambda: progress.covers(accepted) and followed_up(reader.records),
                scenario.settle_timeout_s,
            )
            settled_at = time.time()
            # Then read on until nothing new arrives for 3 s, so late duplicates show.
            await watching.wait_for(Quiet(reader.records, 3.0), 60.0)
        seen = {d: r.at for d, r in status_events(reader.records).items()}
        timing = sent_timing(result.answers, delivery, keys)
        checked = audit(accepted, bodies, reader.records, raw, timing)
        origin = state.started
        return {
            "log": scenario.log,
            "rate": scenario.rate,
            "duration_s": scenario.seconds,
            "codes": result.codes,
            "settled": settled,
            "settle_s": round(settled_at - (origin + scenario.seconds), 1),
            "audit": checked.as_dict(),
            "duplicates_seen": duplicate_copies(reader.records, origin),
            "gateway_log": log_findings(gateway.log_path),
            "enrichment": enrichment_mix(r for r in reader.records if r.delivery_id in accepted),
            "recovery_s": {
                **_recovery(scenario.name, state, accepted, result.answers, seen),
                **_follow_ups_done(state, reader.records),
            },
            "marks": {k: round(v - origin, 2) for k, v in state.marks.items()},
            "per_second": {
                "accepted": per_second((a.sent_at + a.latency_s for a in result.ok()), origin),
                "refused": per_second(
                    (a.sent_at + a.latency_s for a in result.answers if a.code != 200), origin
                ),
                "published": per_second(seen.values(), origin),
                "enriched": per_second(
                    (r.at for r in reader.records if r.ce_type in ENRICHED_TYPES), origin
                ),
            },
            "payload_bytes": payload_bytes([len(c.body) for c in callbacks]),
        }
    finally:
        await asyncio.to_thread(gateway.stop)
        await asyncio.to_thread(sim.stop)
        mounts.close()
        if broker is not None and (not broker.process or broker.process.poll() is not None):
            await asyncio.to_thread(broker.restart)


def _follow_ups_done(run: Run, records: list[Any]) -> dict[str, float]:
    """Seconds from OC being back to the last follow-up `*.enriched` event."""
    back = run.marks.get("OC back")
    enriched = [r.at for r in records if r.ce_type in ENRICHED_TYPES]
    if back is None or not enriched:
        return {}
    return {"follow_ups_done": round(max(enriched) - back, 2)}


async def run(
    names: list[str],
    out: Path,
    vegeta_path: Path,
    *,
    quick: bool = False,
    churn_seconds: float | None = None,
    broker: Broker | None = None,
) -> dict[str, Any]:
    """`churn_seconds` sets the churn run's length (its steps keep their fractions);
    `quick` shortens every run."""
    chosen = scenarios(quick)
    plan = ChurnPlan()
    if churn_seconds is not None or quick:
        plan = plan.shortened(churn_seconds or QUICK_SECONDS)
    on_kafka = any(name == "churn" or chosen[name].log == "kafka" for name in names)
    own = broker is None and on_kafka
    if own:
        broker = await asyncio.to_thread(start_broker, out / "kafka")
    try:
        results = {}
        for name in names:
            if name == "churn":
                assert broker is not None
                results[name] = await run_churn(plan, out, vegeta_path, broker)
            else:
                results[name] = await run_scenario(chosen[name], out, vegeta_path, broker)
        return {"scenarios": results, "quick": quick}
    finally:
        if own and broker is not None:
            await asyncio.to_thread(broker.stop)

"""`make bench`: the gateway on the Kafka log and on the embedded log, and the two ceilings.

For each log: a fixed-arrival-rate sweep (ack latency, end-to-end latency, OC calls, CPU
and memory per step), then saturation (as many callbacks as 64 concurrent senders get
answered). In the same run: the bare Starlette app (the HTTP ceiling) under the same load,
and Kafka's ProducerPerformance with the same record size (the broker ceiling).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import backlog, producer_perf, stages, vegeta
from bench.audit import audit, end_to_end, enrichment_mix
from bench.procstat import Sampler, sample, total
from bench.services import (
    REPO,
    Gateway,
    GatewayConfig,
    Service,
    bare_app,
    service_url,
    simulator,
    split_configs,
)
from bench.stats import percentiles
from bench.targets import Callback, fetch_callbacks, payload_bytes, write_targets
from bench.topics import KafkaReader, Reader, SeenDeliveries, SqliteReader, Watching
from tools.kafka_broker import Broker, start_broker

MODES = ("kafka", "embedded")
# The gateway on Kafka with ingest in a worker process of its own beside the processor's
# (GATEWAY_INGEST_OWN_PROCESS=true).
OWN_PROCESS = "kafka-2p"
# The documented scale-out shape on Kafka: one ingest-only and one processor-only process.
SPLIT = "kafka-split"
# Ingest alone (GATEWAY_PROCESSOR_ENABLED=false): the webhook path's own capacity; the
# "-2w" mode with two ingest workers (GATEWAY_INGEST_WORKERS=2) on every core.
INGEST_ONLY = ("kafka-ingest", "embedded-ingest", "kafka-ingest-2w")
ALL_MODES = (*MODES, OWN_PROCESS, SPLIT, *INGEST_ONLY)
WORKERS = {"kafka-ingest-2w": 2}
# The name of this tree's gateway in the interleaved share measurement.
GATEWAY_TREE = "gateway"


_WARMUP_RECORD_BYTES = 820  # about the simulator's mean callback size


@dataclass(frozen=True)
class Plan:
    rates: tuple[int, ...] = (250, 500, 1000, 2000)
    step_s: float = 20.0
    saturation_s: float = 15.0
    saturation_workers: int = 64
    bare_step_s: float = 10.0
    warmup_rate: int = 200
    warmup_s: float = 10.0
    # A fresh broker's JVM compiles its produce path during the first minute of load and
    # competes with everything else for the two cores meanwhile; this many records sent
    # flat out (ProducerPerformance, results discarded) warm it before any mode runs.
    broker_warmup_records: int = 300_000
    oc_latency_ms: float = 50.0
    seed: int = 7
    modes: tuple[str, ...] = MODES
    producer_perf_records: int = 200_000
    catch_up_timeout_s: float = 180.0
    references: bool = True
    # A step is sustained when at least this share of the offered rate was answered 200
    # (with at most 1% other answers) and the ack p99 stayed under a second; the sweep
    # stops after the first one that is not.
    sustained_share: float = 0.95
    # Extra GATEWAY_* settings for every gateway of the run (experiments; empty by default).
    gateway_env: tuple[tuple[str, str], ...] = ()
    # Overload: after saturation, these modes are offered these multiples of the capacity
    # they just showed (their best answers 200 per second in any step), at a fixed rate.
    overload_modes: tuple[str, ...] = ("kafka", OWN_PROCESS, "kafka-ingest")
    overload_factors: tuple[int, ...] = (2, 4)
    overload_s: float = 20.0
    # The overload sender keeps at most this many requests in flight, as any real sender's
    # connection pool does (OC's is not documented). Unbounded, vegeta opens a connection
    # for every request still waiting: on two cores it then spends more CPU dialling than
    # the gateway gets, and runs out of file descriptors (bench/README.md).
    overload_max_in_flight: int = 1000
    # Backlog: with the split deployment's processor away, its ingest takes this many
    # callbacks at this rate; then a processor starts and works them off (0: no step).
    backlog_callbacks: int = 30_000
    backlog_rate: int = 2_000
    # Ingest alone on Kafka and the bare app, one after the other this many rounds of
    # `saturation_s` each (with the references; 0: not measured): the medians' ratio is
    # the kafka-ingest share in the headline (see `interleaved_share`).
    share_rounds: int = 3


@dataclass
class Context:
    plan: Plan
    out: Path
    vegeta: Path
    simulator_url: str
    broker: Broker | None
    payloads: list[int] = field(default_factory=list)

    def callbacks(self, count: int) -> list[Callback]:
        found = fetch_callbacks(self.simulator_url, count)
        self.payloads += [len(c.body) for c in found]
        return found


def targets(
    ctx: Context, name: str, url: str, rate: int, seconds: float
) -> tuple[Path, list[Callback]]:
    # A few more than the attack can use, so vegeta never runs out (and never repeats one).
    count = math.ceil(rate * seconds * 1.02) + 50
    callbacks = ctx.callbacks(count)
    path = ctx.out / "targets" / f"{name}.jsonl"
    write_targets(path, url, callbacks)
    return path, callbacks


def sim_requests(url: str) -> int:
    total: int = httpx.get(f"{url}/_sim/stats", timeout=10).json()["total"]
    return total


async def step(
    ctx: Context,
    gateway: Gateway,
    pids: list[int],
    watching: Watching | None,
    name: str,
    rate: int,
    seconds: float,
    workers: int = 64,
    max_workers: int | None = None,
    stage_urls: Sequence[str] = (),
) -> dict[str, Any]:
    """One attack on the gateway, then wait until every accepted callback's event is out
    (with no reader, for ingest alone: the answers and the gateway's CPU and memory).
    `stage_urls`: the /metrics of the mode's processes, for where batches spent time."""
    path, callbacks = await asyncio.to_thread(
        targets, ctx, name, f"{gateway.url}/webhooks/oc/outbound", rate or 4000, seconds
    )
    delivery = {c.message_id: c.delivery_id for c in callbacks}
    bodies = {c.delivery_id: c.body for c in callbacks}
    oc_before = await asyncio.to_thread(sim_requests, ctx.simulator_url)
    async with httpx.AsyncClient() as client:
        stages_before = await stages.scrape(client, stage_urls)
    before = total(pids)
    attack = vegeta.Attack(name, rate, seconds, workers=workers, max_workers=max_workers)
    with Sampler(pids) as sampler:
        result = await asyncio.to_thread(vegeta.run, ctx.vegeta, attack, path, ctx.out)
        sent_at = {delivery[m]: at for m, at in result.accepted().items()}
        records = watching.reader.records if watching is not None else []
        seen = SeenDeliveries(records, bodies)
        caught_up = watching is None or await watching.wait_for(
            lambda: seen.covers(sent_at), ctx.plan.catch_up_timeout_s
        )
    after = total(pids)
    async with httpx.AsyncClient() as client:
        stages_after = await stages.scrape(client, stage_urls)
    oc_calls = await asyncio.to_thread(sim_requests, ctx.simulator_url) - oc_before
    accepted = len(sent_at)
    per_k = 1000 / accepted if accepted else float("nan")
    checked = audit(sent_at, bodies, records, "-")
    answered = result.summary()
    refused = len(result.answers) - len(result.ok())
    refusals = percentiles([a.latency_s for a in result.answers if a.code == 503])
    sustained = rate == 0 or (
        result.throughput() >= ctx.plan.sustained_share * rate
        and refused <= 0.01 * len(result.answers)
        and result.ack_latency().p99 < 1.0
    )
    return {
        **answered,
        "sustained": sustained,
        "caught_up": caught_up,
        "e2e_latency_ms": end_to_end(sent_at, records).as_ms(),
        "oc_calls": oc_calls,
        "oc_calls_per_1000": round(oc_calls * per_k, 1),
        "cpu_s": round(after.cpu_s - before.cpu_s, 2),
        "cpu_s_per_1000": round((after.cpu_s - before.cpu_s) * per_k, 3),
        "rss_peak_bytes": sampler.max_rss_bytes,
        "missing": checked.missing if watching is not None else None,
        "reconciled": checked.reconciled if watching is not None else None,
        "duplicates": checked.duplicates,
        "enrichment": enrichment_mix(r for r in records if r.delivery_id in sent_at),
        "refused_latency_ms": refusals.as_ms(),
        "processor_stages_ms": stages.during(stages_before, stages_after),
    }


def reader_for(mode: str, config: GatewayConfig, bootstrap: str | None) -> Reader:
    env = config.env(0, 0)
    outbound = env["GATEWAY_TOPIC_OUTBOUND"]
    if mode.startswith("kafka"):
        assert bootstrap is not None
        return KafkaReader(bootstrap, [outbound], frozenset({outbound}))
    return SqliteReader(config.data_dir / "log.sqlite3", [outbound], frozenset({outbound}))


@contextlib.asynccontextmanager
async def reader_running(
    mode: str, config: GatewayConfig, bootstrap: str | None
) -> AsyncIterator[Watching | None]:
    if mode in INGEST_ONLY:
        yield None
        return
    async with Watching(reader_for(mode, config, bootstrap)) as watching:
        yield watching


async def _start_gateways(ctx: Context, mode: str, config: GatewayConfig) -> list[Gateway]:
    """The gateway (or, for the split mode, its ingest and its processor processes)."""
    if mode in INGEST_ONLY:
        config.extra["GATEWAY_PROCESSOR_ENABLED"] = "false"
    if mode in WORKERS:
        config.extra["GATEWAY_INGEST_WORKERS"] = str(WORKERS[mode])
    if mode == OWN_PROCESS:
        config.extra["GATEWAY_INGEST_OWN_PROCESS"] = "true"
    if mode != SPLIT:
        gateway = Gateway(config, ctx.out / f"gateway-{mode}.log")
        await asyncio.to_thread(gateway.start)
        return [gateway]
    ingest_only, processor_only = split_configs(config)
    gateways = [
        Gateway(ingest_only, ctx.out / f"gateway-{mode}-ingest.log"),
        Gateway(processor_only, ctx.out / f"gateway-{mode}-processor.log"),
    ]
    for gateway in gateways:
        await asyncio.to_thread(gateway.start)
    return gateways


async def bench_mode(ctx: Context, mode: str) -> dict[str, Any]:
    plan = ctx.plan
    bootstrap = ctx.broker.bootstrap if mode.startswith("kafka") and ctx.broker else None
    config = GatewayConfig(
        data_dir=ctx.out / f"data-{mode}",
        suffix=f"{mode}-{uuid.uuid4().hex[:8]}",
        bootstrap=bootstrap,
        oc_url=ctx.simulator_url,
        extra=dict(plan.gateway_env),
    )
    gateways = await _start_gateways(ctx, mode, config)
    gateway, pids = gateways[0], [g.pid for g in gateways]
    urls = [g.metrics_url for g in gateways]
    steps: list[dict[str, Any]] = []
    codes: list[int | None] = []
    try:
        with Sampler(pids) as whole:
            async with reader_running(mode, config, bootstrap) as watching:
                await step(
                    ctx, gateway, pids, watching, f"{mode}-warmup", plan.warmup_rate, plan.warmup_s
                )  # warm-up: its batch stages are not kept
                for rate in plan.rates:
                    print(f"[{mode}] {rate}/s for {plan.step_s:.0f} s", flush=True)
                    steps.append(
                        await step(
                            ctx,
                            gateway,
                            pids,
                            watching,
                            f"{mode}-{rate}",
                            rate,
                            plan.step_s,
                            stage_urls=urls,
                        )
                    )
                    if not steps[-1]["sustained"]:
                        print(f"[{mode}] {rate}/s not sustained; higher rates skipped")
                        break
                print(f"[{mode}] saturation for {plan.saturation_s:.0f} s", flush=True)
                saturation = await step(
                    ctx,
                    gateway,
                    pids,
                    watching,
                    f"{mode}-saturation",
                    0,
                    plan.saturation_s,
                    plan.saturation_workers,
                    stage_urls=urls,
                )
                overload, overload_steps = [], []
                if mode in plan.overload_modes:
                    # What the mode showed it can do: its best answers 200 per second, at
                    # a fixed rate or with 64 senders.
                    capacity = max(s["ok_per_s"] for s in [*steps, saturation])
                    for factor in plan.overload_factors:
                        offered = max(1, round(capacity * factor))
                        print(f"[{mode}] overload: {offered}/s ({factor}x capacity)", flush=True)
                        result = await step(
                            ctx,
                            gateway,
                            pids,
                            watching,
                            f"{mode}-overload-{factor}x",
                            offered,
                            plan.overload_s,
                            max_workers=plan.overload_max_in_flight,
                            stage_urls=urls,
                        )
                        overload.append(
                            overloaded(mode, capacity, result, plan.overload_max_in_flight)
                        )
                        overload_steps.append(result)
        peaks = [total([pid]).peak_rss_bytes for pid in pids]
    finally:
        for g in gateways:
            codes.append(await asyncio.to_thread(g.stop))
    return {
        "log": "embedded" if mode.startswith("embedded") else "kafka",
        "processes": len(gateways),
        "rates": steps,
        "saturation": saturation,
        "overload": overload,
        "overload_steps": overload_steps,
        "peak_rss_bytes": max(whole.max_rss_bytes, sum(peaks)),
        "peak_rss_bytes_per_process": peaks,
        "exit_codes": codes,
    }


def overloaded(
    mode: str, capacity: float, result: dict[str, Any], max_in_flight: int
) -> dict[str, Any]:
    """An overload step as results.json's `benchmark.overload` entries read."""
    return {
        "mode": mode,
        "offered_per_s": result["offered_rate"],
        "sent_per_s": round(result["requests"] / result["duration_s"], 1),
        "sender_max_in_flight": max_in_flight,
        "capacity_per_s": capacity,
        "goodput_per_s": result["ok_per_s"],
        "goodput_share_of_capacity": round(result["ok_per_s"] / capacity, 3) if capacity else None,
        "accepted_ack_p99_ms": result["ack_latency_ms"]["p99"],
        "refused_p99_ms": result["refused_latency_ms"]["p99"],
        "codes": result["codes"],
        "missing": result["missing"],
        "duplicates": result["duplicates"],
    }


async def interleaved_share(ctx: Context) -> dict[str, Any]:
    """Ingest alone on Kafka, then the bare app, `share_rounds` times: each one's median
    saturation and the gateway's share of the bare app's. One saturation of each, taken
    minutes apart in the same run, gave shares from 0.30 to 0.55 over six runs on this
    shared machine (bench/README.md); measured side by side, the machine's moods fall
    on both."""
    from bench import ab  # ab imports this module

    plan = ab.Plan(
        revs=(GATEWAY_TREE,),
        rounds=ctx.plan.share_rounds,
        seconds=ctx.plan.saturation_s,
        mode=INGEST_ONLY[0],
        warmup_s=min(ab.Plan.warmup_s, ctx.plan.warmup_s),
    )
    print(f"[{plan.mode}] against bare Starlette, {plan.rounds} rounds", flush=True)
    measured = await ab.measure(ctx, plan, {GATEWAY_TREE: REPO})
    return ab.summarise(plan, measured)


async def bench_bare(ctx: Context) -> dict[str, Any]:
    plan = ctx.plan
    app = bare_app(ctx.out)
    await asyncio.to_thread(app.start)
    url = f"{service_url(app)}/webhooks/oc/outbound"
    steps = []
    try:
        for rate in plan.rates:
            print(f"[bare] {rate}/s for {plan.bare_step_s:.0f} s", flush=True)
            steps.append(await attack_only(ctx, app, url, f"bare-{rate}", rate, plan.bare_step_s))
        print(f"[bare] saturation for {plan.saturation_s:.0f} s", flush=True)
        saturation = await attack_only(
            ctx, app, url, "bare-saturation", 0, plan.saturation_s, plan.saturation_workers
        )
    finally:
        await asyncio.to_thread(app.stop)
    return {"rates": steps, "saturation": saturation}


async def attack_only(
    ctx: Context, app: Service, url: str, name: str, rate: int, seconds: float, workers: int = 64
) -> dict[str, Any]:
    path, _ = await asyncio.to_thread(targets, ctx, name, url, rate or 6000, seconds)
    before = sample(app.pid)
    attack = vegeta.Attack(name, rate, seconds, workers=workers)
    result = await asyncio.to_thread(vegeta.run, ctx.vegeta, attack, path, ctx.out)
    after = sample(app.pid)
    ok = len(result.ok())
    return {
        **result.summary(),
        "cpu_s_per_1000": round((after.cpu_s - before.cpu_s) * 1000 / ok, 3) if ok else None,
    }


async def run(
    plan: Plan, out: Path, vegeta_path: Path, broker: Broker | None = None
) -> dict[str, Any]:
    """Run the plan; with `broker` given, use it (and leave it running)."""
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    sim, sim_url = simulator(out, plan.seed, plan.oc_latency_ms)
    await asyncio.to_thread(sim.start)
    own_broker = broker is None
    try:
        if broker is None and (any(m.startswith("kafka") for m in plan.modes) or plan.references):
            broker = await asyncio.to_thread(start_broker, out / "kafka")
        ctx = Context(plan, out, vegeta_path, sim_url, broker)
        started = time.time()
        if broker is not None and plan.broker_warmup_records:
            print("[kafka] warming the broker up", flush=True)
            await asyncio.to_thread(
                producer_perf.run,
                broker.bootstrap,
                f"bench.warmup.{uuid.uuid4().hex[:8]}",
                plan.broker_warmup_records,
                _WARMUP_RECORD_BYTES,
                out / "broker-warmup.log",
            )
        modes = {mode: await bench_mode(ctx, mode) for mode in plan.modes}
        backlog_figures: dict[str, Any] | None = None
        if plan.backlog_callbacks and broker is not None:
            print(f"[{SPLIT}] backlog of {plan.backlog_callbacks:,} callbacks", flush=True)
            config = GatewayConfig(
                out / "backlog",
                f"backlog-{uuid.uuid4().hex[:8]}",
                broker.bootstrap,
                sim_url,
                dict(plan.gateway_env),
            )
            backlog_figures = await backlog.run(ctx, config, out)
        references: dict[str, Any] = {}
        if plan.references:
            references["bare_starlette"] = await bench_bare(ctx)
            assert broker is not None
            size = round(sum(ctx.payloads) / len(ctx.payloads))
            print(f"[kafka] ProducerPerformance, {size}-byte records", flush=True)
            references["kafka_producer_perf"] = await asyncio.to_thread(
                producer_perf.run,
                broker.bootstrap,
                f"bench.perf.{uuid.uuid4().hex[:8]}",
                plan.producer_perf_records,
                size,
                out / "producer-perf.log",
            )
            if plan.share_rounds:
                references["interleaved_share"] = await interleaved_share(ctx)
        return {
            "plan": asdict(plan),
            "duration_s": round(time.time() - started, 1),
            "payload_bytes": payload_bytes(ctx.payloads),
            "modes": modes,
            "overload": [entry for mode in modes.values() for entry in mode["overload"]],
            "backlog": backlog_figures,
            "references": references,
        }
    finally:
        if broker is not None and own_broker:
            await asyncio.to_thread(broker.stop)
        await asyncio.to_thread(sim.stop)

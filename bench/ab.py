"""`python -m bench ab`: ingest saturation of two or more commits, interleaved.

On a shared two-core machine one saturation run says little: the bare Starlette
ceiling of one `make bench` run has been 11,000/s and 18,500/s on the same machine an
hour apart. This harness measures the commits to compare (each checked out into a git
worktree of its own, all running the same virtual environment) and the bare app one
after another, round after round, on one broker and one simulator, and reports each
one's median saturation and its share of the bare app's median: a change's before and
after under the same conditions.

    python -m bench ab --rev 8441860 --rev HEAD --rounds 3 [--mode kafka-ingest]

Each measurement is a fresh gateway (or bare app): a short warm-up at 1,000/s, then
64 concurrent senders for `--seconds`, answers 200 per second. `--mode` is one of the
ingest-only modes (kafka-ingest, embedded-ingest).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import benchmark
from bench.services import REPO, Gateway, GatewayConfig, bare_app, service_url, simulator
from tools.kafka_broker import Broker, start_broker

BARE = "bare-starlette"


@dataclass(frozen=True)
class Plan:
    revs: tuple[str, ...]
    rounds: int = 3
    seconds: float = 15.0
    mode: str = "kafka-ingest"
    warmup_rate: int = 1000
    warmup_s: float = 3.0


@contextlib.contextmanager
def worktrees(revs: tuple[str, ...]) -> Iterator[dict[str, Path]]:
    """A detached worktree of each revision (the working tree itself for `.`)."""
    made: list[Path] = []
    found: dict[str, Path] = {}
    try:
        for rev in revs:
            if rev == ".":
                found[rev] = REPO
                continue
            path = Path(tempfile.mkdtemp(prefix="bench-ab-")) / "tree"
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), rev],
                check=True,
                capture_output=True,
            )
            made.append(path)
            found[rev] = path
        yield found
    finally:
        for path in made:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
                check=False,
                capture_output=True,
            )


async def _gateway(ctx: benchmark.Context, plan: Plan, repo: Path, name: str) -> float:
    kafka = plan.mode.startswith("kafka")
    bootstrap = ctx.broker.bootstrap if kafka and ctx.broker else None
    config = GatewayConfig(
        data_dir=ctx.out / f"data-{name}",
        suffix=f"ab-{uuid.uuid4().hex[:8]}",
        bootstrap=bootstrap,
        oc_url=ctx.simulator_url,
        extra={**dict(ctx.plan.gateway_env), "GATEWAY_PROCESSOR_ENABLED": "false"},
    )
    gateway = Gateway(config, ctx.out / f"gateway-{name}.log", repo=repo)
    await asyncio.to_thread(gateway.start)
    try:
        pids = [gateway.pid]
        await benchmark.step(
            ctx, gateway, pids, None, f"{name}-warmup", plan.warmup_rate, plan.warmup_s
        )
        figures = await benchmark.step(
            ctx, gateway, pids, None, f"{name}-saturation", 0, plan.seconds, max_workers=64
        )
    finally:
        await asyncio.to_thread(gateway.stop, 60.0)
    return float(figures["ok_per_s"])


async def _bare(ctx: benchmark.Context, plan: Plan, name: str) -> float:
    app = bare_app(ctx.out)
    await asyncio.to_thread(app.start)
    try:
        url = f"{service_url(app)}/webhooks/oc/outbound"
        await benchmark.attack_only(
            ctx, app, url, f"{name}-warmup", plan.warmup_rate, plan.warmup_s
        )
        figures = await benchmark.attack_only(ctx, app, url, name, 0, plan.seconds)
    finally:
        await asyncio.to_thread(app.stop)
    return float(figures["ok_per_s"])


async def measure(
    ctx: benchmark.Context, plan: Plan, trees: dict[str, Path]
) -> dict[str, list[float]]:
    """Each tree's saturation and the bare app's, one after another, `plan.rounds` times."""
    measured: dict[str, list[float]] = {rev: [] for rev in (*trees, BARE)}
    for n in range(plan.rounds):
        for rev, tree in trees.items():
            name = f"r{n}-{rev.replace('/', '_')}"
            measured[rev].append(await _gateway(ctx, plan, tree, name))
            print(f"[ab] round {n + 1}: {rev} {measured[rev][-1]:,.0f}/s", flush=True)
        measured[BARE].append(await _bare(ctx, plan, f"r{n}-bare"))
        print(f"[ab] round {n + 1}: {BARE} {measured[BARE][-1]:,.0f}/s", flush=True)
    return measured


def summarise(plan: Plan, measured: dict[str, list[float]]) -> dict[str, Any]:
    """Each one's median saturation and its share of the bare app's median."""
    ceiling = statistics.median(measured[BARE])
    return {
        "mode": plan.mode,
        "rounds": plan.rounds,
        "seconds": plan.seconds,
        "results": {
            rev: {
                "saturation_per_s": [round(v, 1) for v in values],
                "median_per_s": round(statistics.median(values), 1),
                "share_of_bare_median": round(statistics.median(values) / ceiling, 3),
            }
            for rev, values in measured.items()
        },
    }


async def run(plan: Plan, out: Path, vegeta: Path) -> dict[str, Any]:
    bench_plan = benchmark.Plan(modes=(plan.mode,), references=False)
    sim, sim_url = simulator(out, bench_plan.seed, bench_plan.oc_latency_ms)
    await asyncio.to_thread(sim.start)
    broker: Broker | None = None
    try:
        if plan.mode.startswith("kafka"):
            broker = await asyncio.to_thread(start_broker, out / "kafka")
        ctx = benchmark.Context(bench_plan, out, vegeta, sim_url, broker)
        with worktrees(plan.revs) as trees:
            measured = await measure(ctx, plan, trees)
    finally:
        if broker is not None:
            await asyncio.to_thread(broker.stop)
        await asyncio.to_thread(sim.stop)
    return summarise(plan, measured)

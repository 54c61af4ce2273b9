"""`python -m bench trace`: `gateway trace` for one order among a million raw records.

A real broker's topics are filled as a week of traffic would leave them (trace_fill.py):
`records` raw records and one typed event for each, and two orders of our own woven in
at fixed points of that week: `found`, a whole life with a re-sent delivery, and `lost`,
whose last event was never published (what "service X never got the shipped event" looks
like). Once the broker has settled, `gateway trace` runs as an operator runs it, a new
process each time, and the wall time from start to exit is measured; each story is
checked against what was written.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

from bench import procstat
from bench.services import REPO, VENV_BIN
from bench.trace_fill import FOUND, LOST, Plan, bench_settings, fill, topics_for
from gateway.log.kafka.partitioner import partition_for
from tools.kafka_broker import Broker, start_broker

__all__ = ["Plan", "run"]

WARM_UP: Final = "OCO-NOT-IN-THE-LOG"


def _broker_settles(broker: Broker, timeout_s: float = 180.0) -> float | None:
    """Seconds until the broker used under a tenth of a core over 2 s (None: it did not
    within `timeout_s`, and the traces run anyway)."""
    if broker.process is None:
        return None
    started = time.monotonic()
    before = procstat.sample(broker.process.pid).cpu_s
    while time.monotonic() - started < timeout_s:
        time.sleep(2.0)  # a measuring window, not a wait for an event
        now = procstat.sample(broker.process.pid).cpu_s
        if now - before < 0.2:
            return round(time.monotonic() - started, 1)
        before = now
    return None


def trace_once(bootstrap: str, plan: Plan, entity: str) -> tuple[float, dict[str, Any]]:
    """One `gateway trace ENTITY --json` as a new process: its wall time and document."""
    env = {
        "PATH": str(VENV_BIN),
        "PYTHONPATH": str(REPO),
        "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "GATEWAY_KAFKA_CREATE_TOPICS": "false",
        "GATEWAY_KAFKA_PARTITIONS": str(plan.partitions),
        "GATEWAY_DATA_DIR": str(REPO / ".run" / "bench-trace"),
        **{
            f"GATEWAY_{name.upper()}": topic
            for name, topic in topics_for(plan.topic_suffix).items()
        },
    }
    started = time.perf_counter()
    done = subprocess.run(
        [str(VENV_BIN / "gateway"), "trace", entity, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1, 2):  # 1: the story has problems; 2: nothing found
        raise RuntimeError(f"gateway trace {entity} exited {done.returncode}:\n{done.stderr}")
    doc: dict[str, Any] = json.loads(done.stdout)
    return wall, doc


def _check(entity: str, doc: dict[str, Any]) -> dict[str, Any]:
    """What the trace found, and whether it is what was written."""
    outcomes = [d["outcome"] for d in doc["deliveries"]]
    found_events = sum(1 for e in doc["events"])
    if entity == FOUND:
        right = outcomes == [*["published"] * 5, "duplicate", "published"] and not doc["problems"]
        right = right and found_events == 6
    else:
        right = outcomes == ["published"] * 3 and found_events == 2 and len(doc["problems"]) == 1
        right = right and "decided published" in doc["problems"][0]
    return {
        "deliveries": len(outcomes),
        "outcomes": outcomes,
        "events_found": found_events,
        "problems": doc["problems"],
        "correct": right,
        "searched": doc["searched"],
    }


def _figures(walls: list[float], inside: list[float]) -> dict[str, Any]:
    return {
        "wall_s": {
            "median": round(statistics.median(walls), 3),
            "max": round(max(walls), 3),
            "all": [round(w, 3) for w in walls],
        },
        "in_process_s": {
            "median": round(statistics.median(inside), 3),
            "max": round(max(inside), 3),
        },
    }


async def run(plan: Plan, out: Path, broker: Broker | None = None) -> dict[str, Any]:
    own = broker is None
    if broker is None:
        broker = await asyncio.to_thread(start_broker, out / "kafka")
    try:
        filled = await fill(broker.bootstrap, plan, out)
        settings = bench_settings(broker.bootstrap, plan)
        # Not measured: right after the fill the broker is still busy with it (flushes,
        # the log cleaner on the compacted topics), and its fetch path is cold.
        settled_s = await asyncio.to_thread(_broker_settles, broker, plan.settle_timeout_s)
        await asyncio.to_thread(trace_once, broker.bootstrap, plan, WARM_UP)
        traces: dict[str, Any] = {}
        for entity, name in ((FOUND, "found"), (LOST, "lost")):
            walls, inside, last = [], [], {}
            for _ in range(plan.repeats):
                wall, doc = await asyncio.to_thread(trace_once, broker.bootstrap, plan, entity)
                walls.append(wall)
                inside.append(float(doc["elapsed_s"]))
                last = doc
            raw_partition = partition_for(entity.encode(), plan.partitions)
            traces[name] = {
                "entity": entity,
                "raw_partition_records": filled.per_partition[settings.topic_raw][raw_partition],
                "outbound_partition_records": filled.per_partition[settings.topic_outbound].get(
                    partition_for(entity.encode(), plan.partitions), 0
                ),
                **_figures(walls, inside),
                **_check(entity, last),
            }
        return {
            "plan": asdict(plan),
            "filled": {
                "raw_records": filled.raw,
                "typed_records": filled.typed,
                "seconds": filled.seconds,
                "raw_per_partition": filled.per_partition[settings.topic_raw],
            },
            "broker_settled_after_s": settled_s,
            "traces": traces,
            "target_s": 5.0,
        }
    finally:
        if own:
            await asyncio.to_thread(broker.stop)

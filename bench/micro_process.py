"""`python -m bench.micro_process`: the processor's own CPU per raw record, in process.

Fills a fresh raw topic with realistic outbound callbacks from the simulator (raw records
exactly as ingest writes them), then runs the processor alone (ingest off) against the
simulator as OC until every record is committed, and reports the process's CPU per
record (event loop, SQLite thread, producer) and records per second. No HTTP load, so the
number moves only with the processor's code.

    python -m bench.micro_process --log embedded --records 5000
    python -m bench.micro_process --log kafka --bootstrap 127.0.0.1:PORT [--profile out.txt]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.services import CLIENT_KEY, REFRESH_TOKEN, SECRET_KEY, simulator, topics_env
from bench.targets import fetch_callbacks
from gateway.ingest.record import Received, raw_records
from gateway.lifespan import Gateway
from gateway.log.base import Record
from gateway.settings import Settings


def _settings(bootstrap: str, data_dir: Path, oc_url: str, enrich: bool) -> Settings:
    topics = topics_env(uuid.uuid4().hex[:8]).items()
    values: dict[str, Any] = {k.removeprefix("GATEWAY_").lower(): v for k, v in topics}
    values |= {
        "data_dir": data_dir,
        "kafka_bootstrap_servers": bootstrap,
        "oc_client_key": CLIENT_KEY,
        "oc_secret_key": SECRET_KEY,
        "oc_base_url": oc_url if enrich else "",
        "oc_refresh_token": REFRESH_TOKEN,
        "ingest_enabled": False,
        "reconcile_enabled": False,
        "metrics_port": 0,
        "instance_id": "micro-process",
    }
    return Settings.model_validate(values)


def _records(settings: Settings, bodies: list[bytes], keys: list[str]) -> list[Record]:
    out: list[Record] = []
    for body, key in zip(bodies, keys, strict=True):
        received = Received(
            kind="outbound",
            body=body,
            delivery_id=f"micro:{uuid.uuid4().hex}",
            received_at=datetime.now(UTC),
            verified=("oc_signature",),
            content_type="application/json",
        )
        out += raw_records(received, [key], settings.topic_raw)
    return out


async def _committed(gateway: Gateway) -> int:
    processor = gateway.processor
    assert processor is not None
    consumer = processor._consumer
    if consumer is None:
        return -1
    return sum((await consumer.lag()).values())


async def _round(settings: Settings) -> tuple[float, float]:
    """(CPU seconds, wall seconds) for one processor to catch up with the raw topic."""
    gateway = Gateway(settings)
    cpu, wall = time.process_time(), time.perf_counter()
    await gateway.start()
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if await _committed(gateway) == 0:
                break
            await asyncio.sleep(0.1)
        return time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await gateway.stop()


async def run(
    bootstrap: str,
    records: int,
    sim_url: str,
    data_dir: Path,
    enrich: bool = True,
    rounds: int = 3,
) -> dict[str, Any]:
    settings = _settings(bootstrap, data_dir, sim_url, enrich)
    callbacks = await asyncio.to_thread(fetch_callbacks, sim_url, records)
    raw = _records(settings, [c.body for c in callbacks], [c.entity_key for c in callbacks])
    # Fill the raw topic before the processor runs, through a gateway with no processor.
    filler = Gateway(settings.model_copy(update={"processor_enabled": False}))
    await filler.log.start()
    for start in range(0, len(raw), 500):
        await filler.log.append(raw[start : start + 500])
    await filler.log.close()
    # Each round is a fresh processor (its own group, state and typed topics) over the
    # same raw records; the least CPU of the rounds is the figure (others are noise).
    results = []
    for n in range(rounds):
        fresh = {
            "kafka_consumer_group": f"{settings.kafka_consumer_group}-{n}",
            "topic_state": f"{settings.topic_state}-{n}",
            "topic_outbound": f"{settings.topic_outbound}-{n}",
            "topic_inventory": f"{settings.topic_inventory}-{n}",
        }
        results.append(await _round(settings.model_copy(update=fresh)))
    cpu, wall = min(results)
    return {
        "log": "kafka" if bootstrap else "embedded",
        "enrichment": enrich,
        "records": records,
        "cpu_us_per_record": round(cpu / records * 1e6, 1),
        "cpu_us_per_record_rounds": [round(c / records * 1e6, 1) for c, _ in results],
        "records_per_s": round(records / wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.micro_process", description=__doc__)
    parser.add_argument("--bootstrap", default="", help="Kafka; empty: the embedded log")
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--oc-latency-ms", type=float, default=50.0)
    parser.add_argument("--no-enrich", action="store_true", help="enrichment off (no OC)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=Path, default=None, help="write a pyinstrument report")
    args = parser.parse_args(argv)
    import uvloop

    with tempfile.TemporaryDirectory() as tmp:
        sim, sim_url = simulator(Path(tmp), 7, args.oc_latency_ms)
        sim.start()
        try:
            if args.profile is not None:
                from pyinstrument import Profiler

                profiler = Profiler(async_mode="disabled")
                profiler.start()
            result = uvloop.run(
                run(
                    args.bootstrap,
                    args.records,
                    sim_url,
                    Path(tmp),
                    not args.no_enrich,
                    args.rounds,
                )
            )
            if args.profile is not None:
                profiler.stop()
                args.profile.write_text(profiler.output_text(unicode=True, show_all=False))
        finally:
            sim.stop()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

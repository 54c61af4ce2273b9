"""The churn run's replicas: started, stopped and killed as Kubernetes would, behind the
balancer, and sampled every second (RSS and open fds from /proc, the processor's producers
and partitions from /metrics) on a thread of their own."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.balancer import Balancer
from bench.procstat import open_fds, sample
from bench.services import Gateway, GatewayConfig, ServiceError

_START_ATTEMPTS = 3  # a free port can still be taken by another process before it binds


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    rss_bytes: int
    fds: int
    producers: float | None  # gateway_processor_producers
    partitions: float | None  # gateway_processor_partitions


@dataclass
class Replica:
    name: str
    service: Gateway
    started_at: float = 0.0  # ready, epoch seconds
    ended_at: float | None = None
    end: str = "running at the end"
    exit_code: int | None = None
    restarts: int = 0
    samples: list[Sample] = field(default_factory=list)


class Fleet:
    """The replicas, the balancer in front of them and the sampler watching them."""

    def __init__(
        self, run_dir: Path, suffix: str, bootstrap: str, oc_url: str, every_s: float
    ) -> None:
        self._run_dir = run_dir
        self._suffix = suffix
        self._bootstrap = bootstrap
        self._oc_url = oc_url
        self._every_s = every_s
        self.balancer = Balancer()
        self.live: list[Replica] = []
        self.all: list[Replica] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_loop, name="churn-sampler")
        self.marks: dict[str, float] = {}

    def mark(self, label: str) -> None:
        self.marks[label] = time.time()
        print(f"[churn] {label}", flush=True)

    async def __aenter__(self) -> Fleet:
        await self.balancer.start()
        self._thread.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.to_thread(self._thread.join)
        for replica in list(self.live):
            await self.terminate(replica, "end of run")
        await self.balancer.stop()

    def config(self, name: str) -> GatewayConfig:
        return GatewayConfig(
            self._run_dir / f"data-{name}",
            self._suffix,
            self._bootstrap,
            self._oc_url,
            {"GATEWAY_INSTANCE_ID": name},
        )

    async def add(self) -> Replica:
        name = f"r{len(self.all) + 1}"
        for attempt in range(1, _START_ATTEMPTS + 1):
            service = Gateway(self.config(name), self._run_dir / f"{name}.log")
            try:
                await asyncio.to_thread(service.start, 120.0)
                break
            except ServiceError:
                if attempt == _START_ATTEMPTS:
                    raise
        replica = Replica(name, service, started_at=time.time())
        with self._lock:
            self.live.append(replica)
            self.all.append(replica)
        self.balancer.add(service.port)
        return replica

    async def terminate(self, replica: Replica, why: str) -> None:
        """Out of the balancer, then SIGTERM, and wait for the exit."""
        self.balancer.remove(replica.service.port)
        replica.exit_code = await asyncio.to_thread(replica.service.stop, 90.0)
        self._gone(replica, why)

    async def kill_and_restart(self, replica: Replica) -> None:
        """SIGKILL; the same replica comes back in place (its data directory and ports)."""
        await asyncio.to_thread(replica.service.kill)
        self.balancer.remove(replica.service.port)
        self.mark(f"{replica.name} SIGKILLed")
        await asyncio.to_thread(replica.service.start, 120.0)
        replica.restarts += 1
        self.balancer.add(replica.service.port)
        self.mark(f"{replica.name} back")

    def _gone(self, replica: Replica, why: str) -> None:
        replica.ended_at, replica.end = time.time(), why
        with self._lock:
            self.live.remove(replica)

    def _sample_loop(self) -> None:
        with httpx.Client(timeout=1.0) as client:
            while not self._stop.wait(self._every_s):
                with self._lock:
                    watched = list(self.live)
                for replica in watched:
                    found = _sample(client, replica.service)
                    if found is not None:
                        replica.samples.append(found)


def _sample(client: httpx.Client, service: Gateway) -> Sample | None:
    if not service.running():
        return None
    try:
        proc = sample(service.pid)
        fds = open_fds(service.pid)
    except (OSError, ValueError, IndexError):
        return None  # it just exited
    figures: dict[str, float] = {}
    with contextlib.suppress(httpx.HTTPError):
        for line in client.get(service.metrics_url).text.splitlines():
            name, _, value = line.partition(" ")
            if name in ("gateway_processor_producers", "gateway_processor_partitions"):
                figures[name] = float(value)
    return Sample(
        time.time(),
        proc.rss_bytes,
        fds,
        figures.get("gateway_processor_producers"),
        figures.get("gateway_processor_partitions"),
    )

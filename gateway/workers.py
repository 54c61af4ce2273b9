"""Ingest workers: callbacks answered in processes of their own, on every core.

On Kafka, with `GATEWAY_INGEST_WORKERS` = N > 1, or N = 1 and
`GATEWAY_INGEST_OWN_PROCESS=true` (so that the processor's work never delays an answer),
`gateway serve` is a primary process that runs the processor, the reconciler and the ops
server (metrics, health), and N worker processes (`gateway serve --worker i`) that serve
the webhook routes. Each worker binds the webhook port with SO_REUSEPORT, so the kernel
spreads connections over them; each has its own Kafka producer, its own spool file
(`spool-w<i>.sqlite3`) and its share of the per-source rate limit. Their metrics reach the
primary's /metrics through prometheus_client's multiprocess files.

The primary starts the workers, hears from each when it is serving (a pipe it holds the
other end of, which also tells it when a worker dies), restarts one that dies with the
shared backoff, and counts as ready only while all of them are. SIGTERM goes to the
workers first (they drain their requests and flush), then the primary stops. A worker
whose primary died (SIGKILL, OOM) is killed by the kernel too (PR_SET_PDEATHSIG): the
gateway dies whole, as a single process would, and never leaves a worker holding the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from gateway.clock import SYSTEM_CLOCK
from gateway.errors import ConfigurationError
from gateway.ingest.service import wait_while_overloaded
from gateway.ops.logs import get_logger
from gateway.ops.metrics import process_gone
from gateway.retry import Backoff, RetryPolicy
from gateway.settings import Settings

logger = get_logger("gateway.workers")

_SPOOL = re.compile(r"spool-w(\d+)\.sqlite3")
_SUPERVISE_S: Final = 0.5
# What a worker writes to its pipe: it serves; it started or stopped refusing callbacks
# (overloaded), so the primary's processor gives way while any worker refuses.
READY: Final = b"1"
OVERLOADED: Final = b"O"
CALM: Final = b"o"


def heard(data: bytes, ready: bool, overloaded: bool) -> tuple[bool, bool]:
    """A worker's readiness and overload once it wrote `data` to its pipe (the last word
    on overload counts)."""
    for byte in data:
        if byte == READY[0]:
            ready = True
        elif byte == OVERLOADED[0]:
            overloaded = True
        elif byte == CALM[0]:
            overloaded = False
    return ready, overloaded


def check_workers(settings: Settings) -> None:
    """Workers need Kafka: the embedded log is one SQLite file for one process."""
    if settings.ingest_workers > 1 and not settings.uses_kafka:
        raise ConfigurationError(
            f"GATEWAY_INGEST_WORKERS={settings.ingest_workers} needs Kafka "
            "(GATEWAY_KAFKA_BOOTSTRAP_SERVERS): the embedded log is one SQLite file that only "
            "one process may write. Use 1 worker, or run on Kafka."
        )


def worker_settings(settings: Settings, index: int) -> Settings:
    """What worker `index` of `settings.ingest_workers` runs with."""
    workers = settings.ingest_workers
    return settings.model_copy(
        update={
            "processor_enabled": False,
            "reconcile_enabled": False,
            "instance_id": f"{settings.instance_id or socket.gethostname()}-w{index}",
            "spool_file": worker_spool(index),
            "rate_limit_per_source": settings.rate_limit_per_source / workers,
            "rate_limit_burst": max(1, settings.rate_limit_burst // workers),
            "spool_max_bytes": max(1, settings.spool_max_bytes // workers),
        }
    )


def shared_dir(data_dir: Path) -> Path:
    """What the processes of a primary share, emptied at each start: prometheus_client's
    multiprocess files and each worker's latest deliveries (`recent-w<i>.json`)."""
    return data_dir / "metrics"


def worker_spool(index: int) -> str:
    return f"spool-w{index}.sqlite3"


def leftover_spools(data_dir: Path, live: int) -> list[Path]:
    """Spool files of workers that no longer run (`live` workers run now, 0 in a single
    process): the primary, or the single process, forwards what they hold."""
    found = []
    for path in sorted(data_dir.glob("spool-w*.sqlite3")):
        matched = _SPOOL.fullmatch(path.name)
        if matched is not None and int(matched.group(1)) >= live:
            found.append(path)
    return found


_PR_SET_PDEATHSIG: Final = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when the one that started it (`parent`) dies;
    exit at once if it is gone already."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # it died before the prctl took effect
        os._exit(1)


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket on `host:port` that other workers may bind too (SO_REUSEPORT:
    the kernel spreads new connections over them)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes] | None = None
    ready: bool = False
    overloaded: bool = False
    reader: int | None = None
    backoff: Backoff = field(
        default_factory=lambda: Backoff(RetryPolicy(max_retries=0, base_s=0.5, cap_s=30.0))
    )


class WorkerPool:
    """The ingest worker processes of a primary."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._workers = [_Worker(i) for i in range(settings.ingest_workers)]
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    @property
    def all_ready(self) -> bool:
        return all(w.ready and w.process is not None for w in self._workers)

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process is not None]

    async def start(self, timeout_s: float = 60.0) -> None:
        """Start every worker and wait until each serves (ConfigurationError if one
        exits or does not get there in time)."""
        for worker in self._workers:
            self._spawn(worker)
        async with asyncio.timeout(timeout_s):
            while not self.all_ready:
                for worker in self._workers:
                    if worker.process is not None and worker.process.poll() is not None:
                        raise ConfigurationError(
                            f"ingest worker {worker.index} exited at start "
                            f"(code {worker.process.returncode}); see its log lines above"
                        )
                self._changed.clear()
                await self._changed.wait()  # a worker wrote to or closed its pipe
        self._supervisor = asyncio.create_task(self._supervise(), name="workers")
        logger.info("ingest workers serving", workers=len(self._workers), pids=self.pids)

    def _spawn(self, worker: _Worker) -> None:
        read_end, write_end = os.pipe()
        argv = [sys.executable, "-m", "gateway.cli", "serve"]
        argv += ["--worker", str(worker.index), "--ready-fd", str(write_end)]
        argv += ["--parent", str(os.getpid())]
        worker.process = subprocess.Popen(argv, pass_fds=(write_end,), stdin=subprocess.DEVNULL)
        os.close(write_end)
        worker.ready = worker.overloaded = False
        worker.reader = read_end
        loop = asyncio.get_running_loop()
        loop.add_reader(read_end, self._heard, worker)

    def _heard(self, worker: _Worker) -> None:
        """The worker wrote to its pipe (it serves), or closed it (it exited)."""
        assert worker.reader is not None
        data = os.read(worker.reader, 64)
        self._changed.set()
        if data:
            worker.ready, worker.overloaded = heard(data, worker.ready, worker.overloaded)
            if READY in data:
                worker.backoff.succeeded()
            return
        worker.ready = worker.overloaded = False
        self._forget_pipe(worker)

    @property
    def overloaded(self) -> bool:
        """Some worker's last admission window refused callbacks."""
        return any(w.overloaded for w in self._workers)

    async def give_way(self) -> None:
        """What the primary's processor waits on before each batch: return once no worker
        refuses callbacks, or after `GIVE_WAY_MAX_S` (as `IngestService.give_way` in a
        single process)."""
        await wait_while_overloaded(lambda: self.overloaded, SYSTEM_CLOCK)

    def _forget_pipe(self, worker: _Worker) -> None:
        if worker.reader is not None:
            asyncio.get_running_loop().remove_reader(worker.reader)
            os.close(worker.reader)
            worker.reader = None

    async def _supervise(self) -> None:
        while not self._stopping:
            for worker in self._workers:
                process = worker.process
                if process is None or process.poll() is None:
                    continue
                worker.ready = worker.overloaded = False
                self._forget_pipe(worker)
                process_gone(process.pid)
                delay = worker.backoff.failed()
                logger.error(
                    "ingest worker exited; restarting it",
                    worker=worker.index,
                    code=process.returncode,
                    restart_in_s=round(delay, 1),
                )
                worker.process = None
                await asyncio.sleep(delay)
                if not self._stopping:
                    self._spawn(worker)
            await asyncio.sleep(_SUPERVISE_S)

    async def stop(self, grace_s: float) -> None:
        """SIGTERM to every worker; SIGKILL to those still there after `grace_s`."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        live = [w for w in self._workers if w.process is not None and w.process.poll() is None]
        for worker in live:
            assert worker.process is not None
            worker.process.send_signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        for worker in live:
            process = worker.process
            assert process is not None
            try:
                await asyncio.to_thread(process.wait, max(0.0, deadline - loop.time()))
            except subprocess.TimeoutExpired:
                logger.error("ingest worker ignored SIGTERM; killing it", worker=worker.index)
                process.kill()
                await asyncio.to_thread(process.wait)
        for worker in self._workers:
            self._forget_pipe(worker)
            if worker.process is not None:
                process_gone(worker.process.pid)

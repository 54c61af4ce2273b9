"""`gateway serve`: the webhook server, the processor and the ops server (metrics, health).

By default everything runs in one process. On Kafka, with GATEWAY_INGEST_WORKERS above 1
or GATEWAY_INGEST_OWN_PROCESS=true, the webhook routes run in ingest worker processes
beside a primary that runs the processor (gateway/workers.py).

SIGTERM or SIGINT: readiness turns false at once, the webhook server stops accepting and
waits for in-flight requests, then the lifespan stops the processor (after its batch),
drains the spool's in-flight batch and flushes the producer; the process exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import shutil
import signal
import socket
from collections.abc import Iterator
from functools import partial
from typing import Final, Literal

import uvicorn
from starlette.types import ASGIApp

from gateway.app import create_app, create_ops_app
from gateway.errors import ConfigurationError
from gateway.ingest.overload import admitting_protocol
from gateway.ingest.verify import Verifier, check_configured
from gateway.lifespan import Gateway
from gateway.ops.logs import configure_logging, get_logger
from gateway.ops.metrics import join_multiprocess, use_multiprocess
from gateway.ops.recent import WorkersRecent
from gateway.settings import Settings
from gateway.workers import (
    CALM,
    OVERLOADED,
    READY,
    WorkerPool,
    check_workers,
    die_with_parent,
    leftover_spools,
    reuse_port_socket,
    shared_dir,
    worker_settings,
)

logger = get_logger("gateway.serve")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to `serve` (two servers share one
    process, and uvicorn's own handling re-raises the signal, exiting non-zero)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.serving = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.serving.set()


def _config(
    app: ASGIApp,
    settings: Settings,
    port: int,
    lifespan: Literal["on", "off"],
    http: type[asyncio.Protocol] | str = "httptools",
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.http_host,
        port=port,
        lifespan=lifespan,
        log_config=None,
        access_log=False,
        http=http,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        timeout_keep_alive=30,
        server_header=False,
        # X-Forwarded-For is the verifier's to read, from GATEWAY_TRUSTED_PROXIES only;
        # uvicorn's own handling would trust 127.0.0.1 (FORWARDED_ALLOW_IPS) on top.
        proxy_headers=False,
    )


async def serve(settings: Settings) -> int:
    """One process: the webhook server, the ops server, and the processor."""
    gateway = Gateway(settings, leftover_spools=leftover_spools(settings.data_dir, 0))
    if settings.ingest_enabled:
        check_configured(gateway.verifier)  # fail before binding any port
    web = _webhook_server(gateway, settings)
    ops = _ops_server(gateway, settings)
    _on_signals(gateway, web)
    ops_task = asyncio.create_task(ops.serve()) if ops is not None else None
    try:
        await web.serve()
    finally:
        if ops is not None and ops_task is not None:
            ops.should_exit = True
            await ops_task
    return 0 if web.started else 1


async def serve_primary(settings: Settings) -> int:
    """With ingest workers: the processor and the ops server here, the webhook routes in
    `settings.ingest_workers` worker processes (gateway/workers.py)."""
    own = settings.model_copy(update={"ingest_enabled": False})
    pool = WorkerPool(settings)
    gateway = Gateway(
        own,
        leftover_spools=leftover_spools(settings.data_dir, settings.ingest_workers),
        workers=pool,
        recent=WorkersRecent(shared_dir(settings.data_dir)),
    )
    check_configured(Verifier(settings))  # what the workers will refuse to run
    ops = _ops_server(gateway, settings)
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        logger.info("shutting down", signal=signal.Signals(signum).name)
        gateway.begin_shutdown()  # readiness false now, the grace counted from now
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    await gateway.start()
    ops_task = asyncio.create_task(ops.serve()) if ops is not None else None
    try:
        await pool.start()
        await stop.wait()
    finally:
        await pool.stop(settings.shutdown_grace_s)
        if ops is not None and ops_task is not None:
            ops.should_exit = True
            await ops_task
        await gateway.stop()
    return 0


async def serve_worker(settings: Settings, index: int, ready_fd: int | None) -> int:
    """Ingest worker `index`: the webhook routes only, on the shared port."""
    mine = worker_settings(settings, index)
    gateway = Gateway(mine)
    check_configured(gateway.verifier)
    web = _webhook_server(gateway, mine)
    _on_signals(gateway, web)
    if ready_fd is not None:
        gateway.ingest.on_overloaded = partial(_tell_overloaded, ready_fd)
    sock = reuse_port_socket(mine.http_host, mine.http_port)
    ready = asyncio.create_task(_tell_when_serving(web, ready_fd))
    recent = gateway.recent.publish(shared_dir(mine.data_dir) / f"recent-w{index}.json")
    publishing = asyncio.create_task(recent, name="recent")
    try:
        await web.serve(sockets=[sock])
    finally:
        ready.cancel()
        publishing.cancel()
        if ready_fd is not None:
            os.close(ready_fd)
    return 0 if web.started else 1


async def _tell_when_serving(web: _Server, ready_fd: int | None) -> None:
    await web.serving.wait()
    if ready_fd is not None:
        os.write(ready_fd, READY)


def _tell_overloaded(ready_fd: int, overloaded: bool) -> None:
    with contextlib.suppress(OSError):  # the primary is gone: this worker dies with it
        os.write(ready_fd, OVERLOADED if overloaded else CALM)


def _webhook_server(gateway: Gateway, settings: Settings) -> _Server:
    ingest = gateway.ingest
    protocol = admitting_protocol(ingest.admission, ingest.refused)
    app = create_app(gateway=gateway)
    return _Server(_config(app, settings, settings.http_port, "on", protocol))


def _ops_server(gateway: Gateway, settings: Settings) -> _Server | None:
    if not settings.metrics_port:
        return None
    return _Server(_config(create_ops_app(gateway), settings, settings.metrics_port, "off"))


def _on_signals(gateway: Gateway, web: uvicorn.Server) -> None:
    """SIGTERM or SIGINT: not ready at once; the webhook server stops taking requests and
    finishes the ones it has (a second signal: at once)."""

    def on_signal(signum: int) -> None:
        logger.info("shutting down", signal=signal.Signals(signum).name)
        gateway.begin_shutdown()
        if web.should_exit:
            web.force_exit = True
        web.should_exit = True

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)


YOUNG_COLLECTION_THRESHOLD: Final = 10_000
"""Objects allocated and not yet freed that start a young collection (CPython: 700)."""


def _quiet_gc() -> None:
    """Keep the cyclic garbage collector, during which nothing else runs, out of the way
    of callbacks (measured in bench/README.md):

    - everything built at start-up (modules, pydantic schemas: tens of thousands of
      objects) is moved out of its reach; a full collection walked it all, 20-30 ms;
    - a young collection waits for 10,000 new objects instead of 700. At 1,000
      callbacks/s a batch's records, look-ups and events live for a few hundred
      milliseconds; collected every 700 objects they survived into the old generation,
      whose growth set off a full collection (35-120 ms) every few seconds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


def _run(args: argparse.Namespace) -> int:
    settings = Settings()
    configure_logging(settings.log_level)
    try:
        import uvloop

        if args.worker is not None:
            if args.parent is not None:
                die_with_parent(args.parent)
            join_multiprocess()
            _quiet_gc()
            return uvloop.run(serve_worker(settings, args.worker, args.ready_fd))
        if settings.serves_from_workers:
            check_workers(settings)
            metrics_dir = shared_dir(settings.data_dir)
            shutil.rmtree(metrics_dir, ignore_errors=True)  # what the last run's left
            use_multiprocess(metrics_dir)
            _quiet_gc()
            return uvloop.run(serve_primary(settings))
        _quiet_gc()
        return uvloop.run(serve(settings))
    except ConfigurationError as exc:
        logger.error("refusing to start", reason=str(exc))
        return 2


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "serve", help="run the gateway (settings from GATEWAY_* environment variables)"
    )
    # Internal: how a primary starts its ingest workers (gateway/workers.py).
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(handler=_run)

"""`gateway serve`: the webhook server and the ops server (metrics, health) in one process.

SIGTERM or SIGINT: readiness turns false at once, the webhook server stops accepting and
waits for in-flight requests, then the lifespan stops the processor (after its batch),
drains the spool's in-flight batch and flushes the producer; the process exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
from collections.abc import Iterator
from typing import Literal

import uvicorn
from starlette.applications import Starlette

from gateway.app import create_app, create_ops_app
from gateway.errors import ConfigurationError
from gateway.ingest.overload import admitting_protocol
from gateway.ingest.verify import check_configured
from gateway.lifespan import Gateway
from gateway.ops.logs import configure_logging, get_logger
from gateway.settings import Settings

logger = get_logger("gateway.serve")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to `serve` (two servers share one
    process, and uvicorn's own handling re-raises the signal, exiting non-zero)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _config(
    app: Starlette,
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
    )


async def serve(settings: Settings) -> int:
    gateway = Gateway(settings)
    if settings.ingest_enabled:
        check_configured(gateway.verifier)  # fail before binding any port
    ingest = gateway.ingest
    protocol = admitting_protocol(ingest.admission, ingest.refused)
    web = _Server(
        _config(create_app(gateway=gateway), settings, settings.http_port, "on", protocol)
    )
    ops: _Server | None = None
    if settings.metrics_port:
        ops = _Server(_config(create_ops_app(gateway), settings, settings.metrics_port, "off"))

    def on_signal(signum: int) -> None:
        logger.info("shutting down", signal=signal.Signals(signum).name)
        gateway.shutting_down = True
        if web.should_exit:
            web.force_exit = True
        web.should_exit = True

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    ops_task = asyncio.create_task(ops.serve()) if ops is not None else None
    try:
        await web.serve()
    finally:
        if ops is not None and ops_task is not None:
            ops.should_exit = True
            await ops_task
    return 0 if web.started else 1


def _quiet_gc() -> None:
    """Move everything built at start-up (modules, pydantic schemas: tens of thousands of
    objects) out of the collector's reach. A full collection otherwise walks them all,
    ≈ 20-30 ms during which no callback is answered; measured in bench/README.md."""
    gc.collect()
    gc.freeze()


def _run(args: argparse.Namespace) -> int:
    settings = Settings()
    configure_logging(settings.log_level)
    _quiet_gc()
    try:
        import uvloop

        return uvloop.run(serve(settings))
    except ConfigurationError as exc:
        logger.error("refusing to start", reason=str(exc))
        return 2


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "serve", help="run the gateway (settings from GATEWAY_* environment variables)"
    )
    parser.set_defaults(handler=_run)

"""`gateway simulate serve|send`: the OC simulator's command line.

    gateway simulate serve --port P [--host 127.0.0.1] [--seed S] [fault flags]
    gateway simulate send --target URL --rate R --count N [--concurrency C] [--json]
        [--simulator URL] [--kind outbound|return|inventory] [--status "In-delivery"]
        [--drop-rate F] [--duplicate-rate F] [--attempts A] [--seed S]

Both read the OC key pair from GATEWAY_OC_CLIENT_KEY / GATEWAY_OC_SECRET_KEY (the
simulator falls back to the development pair); `send` also signs with the first of
GATEWAY_WEBHOOK_SECRETS and honours GATEWAY_VERIFY_OC_SIGNATURE, like the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
from typing import Any, get_args

import httpx
import uvicorn

from gateway.settings import Settings
from gateway.simulator.app import create_app
from gateway.simulator.data import World, WorldSize
from gateway.simulator.entities import ORDER_STATUSES, order_status
from gateway.simulator.faults import FaultSettings, TokenFailure
from gateway.simulator.report import SendReport
from gateway.simulator.sender import (
    CallbackSource,
    SendConfig,
    SimulatorSource,
    WorldSource,
    send_callbacks,
)
from gateway.simulator.signing import CallbackSigner
from gateway.simulator.state import DEFAULT_CLIENT_KEY, DEFAULT_SECRET_KEY, SimulatorConfig
from schemas.callbacks import CallbackKind


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _order_status(text: str) -> str:
    try:
        return order_status(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _serve_parser(simulate: Any) -> None:
    serve = simulate.add_parser("serve", help="serve OC's OAuth and business API")
    serve.add_argument("--port", type=int, default=8099, help="0 picks a free port")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--seed", type=int, default=1, help="same seed, same world")
    size = WorldSize()
    serve.add_argument("--skus", type=int, default=size.skus, help="SKUs in the world")
    serve.add_argument("--orders", type=int, default=size.orders, help="orders at start")
    serve.add_argument("--returns", type=int, default=size.returns, help="returns at start")
    serve.add_argument("--token-ttl", type=float, default=3600.0, help="access token seconds")
    serve.add_argument("--rotate-refresh-tokens", action="store_true")
    serve.add_argument(
        "--token-failure",
        choices=get_args(TokenFailure),
        default="http_200",
        help="answer bad tokens with HTTP 200 + success:false, or HTTP 401",
    )
    serve.add_argument("--latency-ms", type=float, default=0.0)
    serve.add_argument("--latency-jitter-ms", type=float, default=0.0)
    serve.add_argument("--error-rate", type=_fraction, default=0.0, help="share of HTTP 500")
    serve.add_argument("--success-false-rate", type=_fraction, default=0.0)
    serve.add_argument("--rate-limit-rate", type=_fraction, default=0.0, help="share of 429")
    serve.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds")
    serve.add_argument("--down", action="store_true", help="start with OC down (503)")
    serve.set_defaults(handler=serve_command)


def _send_parser(simulate: Any) -> None:
    send = simulate.add_parser("send", help="fire realistic callbacks at a URL")
    send.add_argument(
        "--target",
        required=True,
        help="callback URL; a trailing kind segment or {kind} is replaced per callback",
    )
    send.add_argument("--rate", type=float, default=50.0, help="deliveries/s (0: unpaced)")
    send.add_argument("--count", type=int, default=100)
    send.add_argument("--concurrency", type=int, default=16)
    send.add_argument("--kind", choices=get_args(CallbackKind), default=None)
    send.add_argument(
        "--status",
        type=_order_status,
        default=None,
        metavar="STATUS",
        help="outbound callbacks only, each about a new order taken to this OC status: "
        + ", ".join(ORDER_STATUSES),
    )
    send.add_argument("--simulator", default=None, help="take callbacks from this simulator")
    send.add_argument("--seed", type=int, default=1, help="world seed without --simulator")
    send.add_argument("--drop-rate", type=_fraction, default=0.0)
    send.add_argument("--duplicate-rate", type=_fraction, default=0.0)
    send.add_argument("--attempts", type=int, default=1, help="tries per callback")
    send.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    send.add_argument("--json", action="store_true", help="print one JSON object")
    send.set_defaults(handler=send_command)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    simulate = commands.add_parser("simulate", help="run the OC simulator or its sender")
    actions = simulate.add_subparsers(dest="simulate_command", metavar="ACTION")
    _serve_parser(actions)
    _send_parser(actions)

    def usage(_: argparse.Namespace) -> int:
        simulate.print_help()
        return 2

    simulate.set_defaults(handler=usage)


def simulator_config(args: argparse.Namespace, settings: Settings) -> SimulatorConfig:
    faults = FaultSettings(
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        error_rate=args.error_rate,
        success_false_rate=args.success_false_rate,
        rate_limit_rate=args.rate_limit_rate,
        retry_after_s=args.retry_after,
        down=args.down,
        token_ttl_s=args.token_ttl,
        token_failure=args.token_failure,
        rotate_refresh_tokens=args.rotate_refresh_tokens,
    )
    return SimulatorConfig(
        seed=args.seed,
        client_key=settings.oc_client_key or DEFAULT_CLIENT_KEY,
        secret_key=settings.oc_secret_key.get_secret_value() or DEFAULT_SECRET_KEY,
        faults=faults,
        world_size=WorldSize(skus=args.skus, orders=args.orders, returns=args.returns),
    )


def serve_command(args: argparse.Namespace) -> int:
    config = simulator_config(args, Settings())
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when
    # the listening socket says TCP; without it small answers wait for delayed ACKs.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    # Listen before announcing the URL: connections made before uvicorn starts serving
    # then wait in the backlog instead of being refused.
    listener.listen(2048)
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), log_level="warning", access_log=False, lifespan="off")
    )
    sys.stdout.write(f"OC simulator serving on http://{args.host}:{port}\n")
    sys.stdout.flush()
    server.run(sockets=[listener])
    return 0


async def _send(args: argparse.Namespace, signer: CallbackSigner) -> SendReport:
    config = SendConfig(
        target=args.target,
        count=args.count,
        rate=args.rate,
        concurrency=args.concurrency,
        kind="outbound" if args.status else args.kind,
        drop_rate=args.drop_rate,
        duplicate_rate=args.duplicate_rate,
        attempts=max(1, args.attempts),
        seed=args.seed,
    )
    limits = httpx.Limits(max_connections=max(1, args.concurrency) + 1)
    async with httpx.AsyncClient(timeout=args.timeout, limits=limits) as client:
        source: CallbackSource
        if args.simulator:
            source = SimulatorSource(client, args.simulator, args.status)
        else:
            source = WorldSource(World(args.seed), args.status)
        return await send_callbacks(config, source, client, signer)


def send_command(args: argparse.Namespace) -> int:
    if args.status and args.kind not in (None, "outbound"):
        sys.stderr.write("gateway simulate send: --status picks outbound callbacks only\n")
        return 2
    signer = CallbackSigner.from_settings(Settings())
    report = asyncio.run(_send(args, signer))
    if args.json:
        sys.stdout.write(json.dumps(report.to_json()) + "\n")
    else:
        sys.stdout.write("\n".join(report.lines()) + "\n")
    return 0

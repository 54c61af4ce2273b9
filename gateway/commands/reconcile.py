"""`gateway reconcile --since T [--until T] [--dry-run]`: one reconciliation run by hand.

Prints one JSON line per entity whose OC status differs from what the gateway last
published (or saw), then a summary. Without `--dry-run` it appends the observations to
the raw log, and a running processor publishes the missed changes, marked reconciled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict

from gateway.commands.common import opened_log, parse_when
from gateway.errors import ConfigurationError
from gateway.log.base import SoleLease
from gateway.oc.factory import build_client
from gateway.ops.metrics import Metrics
from gateway.process.reconcile import Reconciler
from gateway.settings import Settings


async def _run(args: argparse.Namespace) -> int:
    settings = Settings()
    metrics = Metrics()
    client = build_client(settings, metrics)
    if client is None:
        raise ConfigurationError("reconciliation needs OC: set GATEWAY_OC_BASE_URL")
    async with opened_log(settings) as log:
        await client.start()
        try:
            reconciler = Reconciler(settings, log, client, metrics, SoleLease())
            until = parse_when(args.until) if args.until else parse_when("0s")
            report = await reconciler.run_once(parse_when(args.since), until, args.dry_run)
        finally:
            await client.close()
    for found in report.changes:
        sys.stdout.write(json.dumps(asdict(found)) + "\n")
    verb = "found" if args.dry_run else "sent"
    sys.stderr.write(
        f"{report.observed} entities compared, {len(report.changes)} changes {verb}, "
        f"{report.calls} OC query calls\n"
    )
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("reconcile", help="compare OC's state with what was published")
    parser.add_argument("--since", required=True, help="ISO-8601 time or a duration ago (2d)")
    parser.add_argument("--until", help="ISO-8601 time or a duration ago (default: now)")
    parser.add_argument("--dry-run", action="store_true", help="print, do not send")
    parser.set_defaults(handler=lambda args: asyncio.run(_run(args)))

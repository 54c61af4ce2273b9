"""`gateway replay`: rebuild typed events from the raw log, e.g. after a parser fix.

Every raw record in the window goes through today's parser and mapping with fresh,
throw-away dedup state, and its events are appended to the typed topics with the same
deterministic `ce_id` they had (or would have had): consumers that deduplicate on
`ce_id` see a replay of unchanged history as duplicates and a fixed record as new.
Enrichment is off unless asked for: it would show OC's state of today, not of then.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime

from gateway.commands.common import opened_log, parse_when
from gateway.log.base import Log, LogRecord, Record
from gateway.oc.factory import build_client
from gateway.ops.metrics import Metrics
from gateway.process.enricher import OcEnricher
from gateway.process.handler import Deferred, Done, RecordHandler
from gateway.process.state import StateStore, StateView
from gateway.settings import Settings

_CHUNK = 500


async def replay(
    settings: Settings,
    log: Log,
    since: datetime,
    until: datetime | None,
    key: str | None,
    enrich: bool,
    dry_run: bool = False,
) -> tuple[int, int, int]:
    """(raw records read, events written, records that failed) for one replay."""
    metrics = Metrics()
    client = build_client(settings, metrics) if enrich else None
    if client is not None:
        await client.start()
    enricher = OcEnricher(client) if client is not None else None
    handler = RecordHandler(settings, metrics, enricher)
    view = StateView(StateStore(log, settings.topic_state))
    until_ms = int(until.timestamp() * 1000) if until else None
    read = written = failed = 0
    chunk: list[LogRecord] = []
    try:
        async for record in log.read(settings.topic_raw, since_ms=int(since.timestamp() * 1000)):
            if until_ms is not None and record.timestamp_ms > until_ms:
                continue
            if key is not None and record.key != key.encode():
                continue
            read += 1
            chunk.append(record)
            if len(chunk) >= _CHUNK:
                out, bad = await _handle(handler, chunk, view)
                written, failed = written + await _flush(log, out, dry_run), failed + bad
        out, bad = await _handle(handler, chunk, view)
        written, failed = written + await _flush(log, out, dry_run), failed + bad
    finally:
        if client is not None:
            await client.close()
    return read, written, failed


async def _handle(
    handler: RecordHandler, chunk: list[LogRecord], view: StateView
) -> tuple[list[Record], int]:
    """The outputs of a chunk of raw records and how many failed (reported on stderr);
    records that waited for a failed one of their entity are handled after it."""
    outputs: list[Record] = []
    failed = 0
    pending = list(chunk)
    while pending:
        again: list[LogRecord] = []
        for record, result in zip(pending, await handler.handle(pending, view), strict=True):
            if isinstance(result, Done):
                outputs += result.outputs
            elif isinstance(result, Deferred):
                again.append(record)
            else:
                failed += 1
                sys.stderr.write(f"offset {record.partition}/{record.offset}: {result.error}\n")
        pending = again
    view.apply()
    chunk.clear()
    return outputs, failed


async def _flush(log: Log, outputs: list[Record], dry_run: bool) -> int:
    if outputs and not dry_run:
        await log.append(outputs)
    return len(outputs)


async def _run(args: argparse.Namespace) -> int:
    settings = Settings()
    async with opened_log(settings) as log:
        read, written, failed = await replay(
            settings,
            log,
            parse_when(args.since),
            parse_when(args.until) if args.until else None,
            args.key,
            args.enrich,
            args.dry_run,
        )
    verb = "would write" if args.dry_run else "wrote"
    sys.stderr.write(f"replayed {read} raw records, {verb} {written} events, {failed} failed\n")
    return 1 if failed else 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("replay", help="rebuild typed events from the raw log")
    parser.add_argument("--since", required=True, help="ISO-8601 time or a duration ago (6h)")
    parser.add_argument("--until", help="ISO-8601 time or a duration ago (default: now)")
    parser.add_argument("--key", help="only this entity (order number, return number ...)")
    parser.add_argument("--enrich", action="store_true", help="look up OC's current state")
    parser.add_argument("--dry-run", action="store_true", help="count, do not write")
    parser.set_defaults(handler=lambda args: asyncio.run(_run(args)))

"""`gateway dlq list|redrive`: look at dead letters and send them back for processing.

Redrive reads the DLQ as consumer group `<processor group>-redrive` and puts each
record back on its original topic unchanged, committing the group's position in the
same transaction as the appends: run it twice and nothing is sent twice. Dead letters of
given-up follow-up enrichments have no record to send back; redrive skips them (`gateway
replay --key K --enrich` rebuilds that entity's events with OC's current state).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from gateway.commands.common import opened_log
from gateway.log.base import LogRecord, Record
from gateway.process.dlq import (
    H_ATTEMPTS,
    H_DEAD_LETTER,
    H_FAILED_AT,
    H_ORIGINAL_OFFSET,
    H_ORIGINAL_PARTITION,
    H_ORIGINAL_TOPIC,
    H_REASON,
    redrivable,
    redrive_record,
)
from gateway.settings import Settings

_BATCH = 100
_IDLE_S = 2.0


def _text(record: LogRecord, name: str) -> str | None:
    value = record.header(name)
    return None if value is None else value.decode("utf-8", "replace")


def describe(record: LogRecord) -> dict[str, object]:
    return {
        "offset": record.offset,
        "partition": record.partition,
        "key": record.key.decode("utf-8", "replace") if record.key else None,
        "reason": _text(record, H_REASON),
        "attempts": _text(record, H_ATTEMPTS),
        "failed_at": _text(record, H_FAILED_AT),
        "original": {
            "topic": _text(record, H_ORIGINAL_TOPIC),
            "partition": _text(record, H_ORIGINAL_PARTITION),
            "offset": _text(record, H_ORIGINAL_OFFSET),
        },
        "delivery_id": _text(record, "gw-delivery-id"),
        "dead_letter": _text(record, H_DEAD_LETTER) or "record",
    }


async def list_dead_letters(settings: Settings) -> int:
    async with opened_log(settings) as log:
        count = 0
        async for record in log.read(settings.topic_dlq):
            sys.stdout.write(json.dumps(describe(record)) + "\n")
            count += 1
    sys.stderr.write(f"{count} dead letters in {settings.topic_dlq}\n")
    return 0


async def redrive(settings: Settings, dry_run: bool, rate: float | None) -> int:
    """Send every dead letter not yet re-driven back to its original topic."""
    sent = 0
    size = max(1, min(_BATCH, int(rate))) if rate else _BATCH
    async with opened_log(settings) as log:
        consumer = log.consumer(f"{settings.kafka_consumer_group}-redrive", [settings.topic_dlq])
        await consumer.start()
        try:
            while True:
                batch = await consumer.fetch(size, _IDLE_S)
                if not batch:
                    break
                again = [r for r in batch if redrivable(r)]
                for record in batch:
                    verb = "redrive" if redrivable(record) else "skip"
                    sys.stdout.write(json.dumps({verb: describe(record)}) + "\n")
                sent += len(again)
                if dry_run:
                    continue
                positions = {r.topic_partition: r.offset + 1 for r in batch}
                outputs: dict[tuple[str, int], list[Record]] = {}
                for record in again:
                    outputs.setdefault(record.topic_partition, []).append(redrive_record(record))
                await consumer.commit(outputs, positions)
                if rate:
                    await asyncio.sleep(len(batch) / rate)
        finally:
            await consumer.stop()
    verb = "would re-drive" if dry_run else "re-drove"
    sys.stderr.write(f"{verb} {sent} dead letters\n")
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = commands.add_parser("dlq", help="inspect and re-drive dead letters")
    actions = dlq.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("list", help="print every dead letter as a JSON line")
    show.set_defaults(handler=lambda args: asyncio.run(list_dead_letters(Settings())))
    again = actions.add_parser("redrive", help="send dead letters back to be processed")
    again.add_argument("--dry-run", action="store_true", help="print, do not send")
    again.add_argument("--rate", type=float, help="at most this many records per second")
    again.set_defaults(
        handler=lambda args: asyncio.run(redrive(Settings(), args.dry_run, args.rate))
    )

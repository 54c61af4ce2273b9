"""`gateway events tail`: print a topic's records as JSON lines (for people, not services)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from gateway.commands.common import opened_log, parse_when, topic_named
from gateway.log.base import LogRecord
from gateway.settings import Settings

_FOLLOW_POLL_S = 0.5


def render(record: LogRecord) -> str:
    """One line: position, key, headers and the value (parsed when it is JSON)."""
    try:
        value: object = json.loads(record.value)
    except ValueError:
        value = record.value.decode("utf-8", "replace")
    return json.dumps(
        {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": record.key.decode("utf-8", "replace") if record.key else None,
            "headers": {k: v.decode("utf-8", "replace") for k, v in record.headers},
            "value": value,
        },
        ensure_ascii=False,
    )


async def tail(settings: Settings, topic: str, since: str | None, follow: bool) -> int:
    async with opened_log(settings) as log:
        since_ms = int(parse_when(since).timestamp() * 1000) if since else None
        seen: set[tuple[int, int]] = set()
        while True:
            async for record in log.read(topic, since_ms=since_ms):
                if (record.partition, record.offset) not in seen:
                    seen.add((record.partition, record.offset))
                    sys.stdout.write(render(record) + "\n")
                    if since_ms is None or record.timestamp_ms > since_ms:
                        # Following re-reads from the newest time seen; `seen` drops
                        # the overlap, so it only needs records from that time on.
                        since_ms = record.timestamp_ms
                        seen = {(record.partition, record.offset)}
            sys.stdout.flush()
            if not follow:
                return 0
            await asyncio.sleep(_FOLLOW_POLL_S)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    events = commands.add_parser("events", help="read the gateway's topics")
    actions = events.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("tail", help="print a topic's records as JSON lines")
    show.add_argument(
        "--topic",
        default="outbound",
        help="outbound (default), returns, inventory, raw, quarantine, dlq or a full name",
    )
    show.add_argument("--since", help="ISO-8601 time or a duration ago (30m, 6h, 7d)")
    show.add_argument("--follow", "-f", action="store_true", help="keep printing new records")

    def run(args: argparse.Namespace) -> int:
        settings = Settings()
        return asyncio.run(
            tail(settings, topic_named(settings, args.topic), args.since, args.follow)
        )

    show.set_defaults(handler=run)

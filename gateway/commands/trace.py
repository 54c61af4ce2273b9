"""`gateway trace ENTITY`: one order's (return's, stock level's) whole story, on either log.

Every raw delivery for the entity in the order the processor read it, what the
processor decided for each (worked out again with its own code), the typed events found
and what followed them, dead letters and quarantined deliveries, and the entity's state.
Reads only what the key gives (gateway/trace/find.py); never a whole topic but the
quarantine. Exits 0 when the story has no problems, 1 when it has (a decided event not
found, a dead letter, a quarantined delivery...), 2 when nothing was found at all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from gateway.commands.common import parse_when
from gateway.settings import Settings
from gateway.trace.find import trace
from gateway.trace.render import render_text
from gateway.trace.source import open_source


async def run_trace(
    settings: Settings, entity: str, since: str | None, as_json: bool, with_state: bool
) -> int:
    since_ms = int(parse_when(since).timestamp() * 1000) if since else None
    async with open_source(settings) as source:
        story = await trace(source, settings, entity, since_ms, with_state=with_state)
    doc = story.to_json()
    if as_json:
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(doc))
        if not doc["deliveries"] and not doc["quarantined"] and ":" not in entity:
            sys.stderr.write(
                f"nothing found for {entity!r}; inventory levels are traced by their key "
                "mfSkuId:place (e.g. OC0000000675549:UK)\n"
            )
    if not doc["deliveries"] and not doc["quarantined"] and not doc["events"]:
        return 2
    return 1 if doc["problems"] else 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "trace",
        help="everything the logs say about one order, return or stock level",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "entity", help="order number, return number, or inventory key mfSkuId:place"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--since",
        help="only what was received from this time on: ISO-8601 or a duration ago (30m, 6h, 7d)",
    )
    parser.add_argument(
        "--state",
        action="store_true",
        help="also read the processor's stored state from the state changelog",
    )

    def run(args: argparse.Namespace) -> int:
        return asyncio.run(run_trace(Settings(), args.entity, args.since, args.json, args.state))

    parser.set_defaults(handler=run)

"""The `gateway` command: serve, simulate, events, trace, replay, dlq, reconcile, oc, settings.

Each sub-command lives with the package it drives and registers itself here through a
`register(subparsers)` function, so this module stays a table of contents.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    import gateway.commands.dlq
    import gateway.commands.events
    import gateway.commands.oc
    import gateway.commands.reconcile
    import gateway.commands.replay
    import gateway.commands.settings_doc
    import gateway.commands.trace
    import gateway.serve
    import gateway.simulator.cli

    parser = argparse.ArgumentParser(
        prog="gateway",
        description="Orange Connex (OC) event gateway. Settings come from GATEWAY_* variables.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    gateway.serve.register(commands)
    gateway.commands.events.register(commands)
    gateway.commands.trace.register(commands)
    gateway.commands.dlq.register(commands)
    gateway.commands.replay.register(commands)
    gateway.commands.reconcile.register(commands)
    gateway.commands.oc.register(commands)
    gateway.simulator.cli.register(commands)
    gateway.commands.settings_doc.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`gateway serve`: run the webhook server, the processor and the ops endpoints."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="run the gateway (settings from GATEWAY_*)")
    serve.set_defaults(handler=lambda _: 0)

"""`gateway simulate serve|send`: the OC simulator's command line."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    simulate = commands.add_parser("simulate", help="run the OC simulator or its sender")

    def usage(_: argparse.Namespace) -> int:
        simulate.print_help()
        return 2

    simulate.set_defaults(handler=usage)

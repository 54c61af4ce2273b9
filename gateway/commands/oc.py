"""`gateway oc login|check`: connect the gateway to an OC account, and test the account."""

from __future__ import annotations

import argparse

from gateway.commands import oc_check, oc_login


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    oc = commands.add_parser("oc", help="connect to OC's API: sign in, check the account")
    actions = oc.add_subparsers(dest="action", required=True, metavar="ACTION")
    oc_login.register(actions)
    oc_check.register(actions)

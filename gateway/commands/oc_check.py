"""`gateway oc check`: does the configured OC account work for everything the gateway does?

Refreshes the access token and makes one cheap signed call per API family
(gateway.oc.check), printing per call OK or OC's own error code and message, then whether
OC rotated the refresh token. Exit status 1 when any call failed. Run it after
`gateway oc login` and after any key rotation; in a cluster, run it in a gateway pod
(`kubectl exec`), so it uses that pod's settings and token store.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from gateway.errors import ConfigurationError
from gateway.oc.check import CheckResult, check_account
from gateway.oc.factory import build_client
from gateway.oc.tokens import StoredToken, TokenStore
from gateway.ops.metrics import Metrics
from gateway.settings import Settings

_STATUS = {True: "OK", False: "FAIL", None: "SKIP"}


def render(results: list[CheckResult]) -> list[str]:
    """One aligned line per call, then a summary line (pure)."""
    lines = [f"{r.family:<15} {_STATUS[r.ok]:<5} {r.call:<45} {r.detail}" for r in results]
    families = [r for r in results if r.family != "token refresh"]
    bad = sum(1 for r in families if r.ok is not True)
    if bad:
        lines.append(f"{bad} of {len(families)} API families failed.")
    else:
        lines.append(f"All {len(families)} API families answered.")
    return lines


def token_source(settings: Settings, start: StoredToken) -> str:
    """Where this run's refresh token comes from, for the header line (pure)."""
    bootstrap = settings.oc_refresh_token.get_secret_value()
    if bootstrap and start.refresh_token == bootstrap:
        return "GATEWAY_OC_REFRESH_TOKEN"
    return f"the token store {settings.token_store_path}"


def rotation_note(settings: Settings, start: StoredToken, after: StoredToken | None) -> str:
    """What the refresh did to the refresh token (pure)."""
    if (
        after is not None
        and after.seed == start.seed
        and after.refresh_token != start.refresh_token
    ):
        return (
            f"OC rotated the refresh token; the new one is in {settings.token_store_path}. "
            "Every process of this account must share that store (helm/README.md, "
            "Connecting to OC)."
        )
    return "OC kept the refresh token (no rotation on this refresh)."


async def _check(settings: Settings) -> int:
    # No retries: the check reports what OC answers now.
    settings = settings.model_copy(update={"oc_max_retries": 0})
    client = build_client(settings, Metrics())
    if client is None:
        raise ConfigurationError("set GATEWAY_OC_BASE_URL to OC's host (see `gateway oc login`)")
    store = TokenStore(settings.token_store_path)
    start = store.starting_point(settings.oc_refresh_token.get_secret_value())
    sys.stdout.write(
        f"OC {settings.oc_base_url} as client {settings.oc_client_key}, refresh token from "
        f"{token_source(settings, start)}\n"
    )
    await client.start()
    try:
        results = await check_account(client.queries, datetime.now(UTC))
    finally:
        await client.close()
    lines = render(results)
    if results[0].ok:
        lines.append(rotation_note(settings, start, store.load()))
    sys.stdout.write("\n".join(lines) + "\n")
    return 0 if all(r.ok for r in results) else 1


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_check(Settings()))
    except ConfigurationError as exc:
        sys.stderr.write(f"gateway oc check: {exc}\n")
        return 2


def register(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = actions.add_parser(
        "check",
        help="make one cheap signed call per OC API family the gateway uses",
        description="Refresh the access token and call OC's order query, stock snapshot, "
        "return orders and return stock once each with the configured account; exit 1 "
        "when any fails.",
    )
    check.set_defaults(handler=run)

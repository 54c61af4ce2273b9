"""`gateway oc login`: sign in to OC once and hand the gateway its refresh token.

Prints OC's authorize URL (fresh `state`), waits for OC's redirect on the loopback
redirect URI or for its address pasted on stdin, exchanges the code, and writes the
refresh token to the token store the gateway reads (`GATEWAY_OC_TOKEN_STORE`, mode 0600)
or, with `--print-secret`, prints a Kubernetes Secret manifest instead. A login's refresh
token is its grant's seed (gateway.oc.tokens), so the store and a
`GATEWAY_OC_REFRESH_TOKEN` set to the same token agree. Human messages go to stderr;
stdout carries only the manifest, and no token is ever printed otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import re
import sys
import webbrowser
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Final, TextIO

import httpx

from gateway.errors import ConfigurationError, LoginFailed
from gateway.oc.login import LoginSession, TokenGrant, exchange_code
from gateway.oc.tokens import TokenStore
from gateway.settings import Settings

DEFAULT_TIMEOUT_S: Final = 300.0
DEFAULT_SECRET_NAME: Final = "oc-event-gateway-oc-oauth"
SECRET_KEY: Final = "GATEWAY_OC_REFRESH_TOKEN"
REFRESH_TOKEN_LIFETIME: Final = timedelta(days=365)
SANDBOX_HOST: Final = "https://openapi-stage-hk.orangeconnex.com"
PRODUCTION_HOST: Final = "https://openapi-hk.orangeconnex.com"

_DNS_SUBDOMAIN: Final = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_DNS_LABEL: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def secret_manifest(name: str, namespace: str | None, refresh_token: str, at: datetime) -> str:
    """A Kubernetes Secret holding `GATEWAY_OC_REFRESH_TOKEN` (pure). The chart reads it
    through `oc.refreshTokenSecret`; `at` is recorded as the grant's time."""
    encoded = base64.b64encode(refresh_token.encode()).decode()
    lines = ["apiVersion: v1", "kind: Secret", "metadata:", f"  name: {name}"]
    if namespace:
        lines.append(f"  namespace: {namespace}")
    lines += [
        "  labels:",
        "    app.kubernetes.io/name: oc-event-gateway",
        "    app.kubernetes.io/component: oc-oauth",
        "  annotations:",
        f'    oc-event-gateway/granted-at: "{at.isoformat(timespec="seconds")}"',
        "type: Opaque",
        "data:",
        f"  {SECRET_KEY}: {encoded}",
    ]
    return "\n".join(lines) + "\n"


def _dns_name(pattern: re.Pattern[str], limit: int) -> Callable[[str], str]:
    def check(text: str) -> str:
        if len(text) > limit or not pattern.match(text):
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid Kubernetes name")
        return text

    return check


@contextlib.contextmanager
def pasting_from(stream: TextIO, session: LoginSession) -> Iterator[bool]:
    """Feed each line typed or piped into `stream` to `session` while the block runs;
    yields whether that works (not for a regular file or a closed stdin)."""
    loop = asyncio.get_running_loop()
    try:
        fd = stream.fileno()
        pending = bytearray()

        def readable() -> None:
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                loop.remove_reader(fd)
                if pending:
                    session.paste(pending.decode("utf-8", "replace"))
                return
            pending.extend(chunk)
            while b"\n" in pending:
                line, _, rest = bytes(pending).partition(b"\n")
                pending[:] = rest
                session.paste(line.decode("utf-8", "replace"))

        loop.add_reader(fd, readable)
    except (AttributeError, ValueError, OSError):
        yield False
        return
    try:
        yield True
    finally:
        loop.remove_reader(fd)


def _base_url(settings: Settings) -> str:
    base = settings.oc_base_url.strip().rstrip("/")
    if not base:
        raise ConfigurationError(
            "set GATEWAY_OC_BASE_URL to OC's host: "
            f"{SANDBOX_HOST} (sandbox) or {PRODUCTION_HOST} (production)"
        )
    if base.endswith("/openapi"):
        raise ConfigurationError(
            "GATEWAY_OC_BASE_URL is OC's host without /openapi (OAuth lives at /oauth)"
        )
    if not settings.oc_client_key:
        raise ConfigurationError("set GATEWAY_OC_CLIENT_KEY: the client key OC issued you")
    return base


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


async def _sign_in(settings: Settings, args: argparse.Namespace) -> TokenGrant:
    base, client = _base_url(settings), settings.oc_client_key
    async with httpx.AsyncClient(timeout=settings.oc_timeout_s) as http:
        if args.code:
            if not args.redirect_uri:
                raise LoginFailed(
                    "--code needs --redirect-uri: the redirect URI of the authorize URL "
                    "that produced the code (OC compares them)"
                )
            _say("Exchanging the code (its state cannot be checked: it was given with --code).")
            return await exchange_code(http, base, client, args.code, args.redirect_uri)
        async with LoginSession.open(http, base, client, args.redirect_uri) as session:
            _say(f"Signing in to OC at {base} for client {client}.\n")
            _say("Open this address in a browser, sign in to OC and approve the access:\n")
            _say(f"  {session.authorize_url}\n")
            if session.listening:
                _say(
                    f"Waiting up to {args.timeout:g} s for OC to send the browser back to "
                    f"{session.redirect_uri}.\nIf the browser runs on another machine, the page "
                    "it lands on will not load: copy its address from the address bar and "
                    "paste it here."
                )
            else:
                _say(
                    f"OC will send the browser to {session.redirect_uri}. Paste here the "
                    f"address it was sent to (up to {args.timeout:g} s)."
                )
            if args.open:
                webbrowser.open(session.authorize_url)
            with pasting_from(sys.stdin, session) as pasting:
                code = await session.wait_for_code(args.timeout, _say, pasting=pasting)
            return await session.exchange(code)


def _store(settings: Settings, grant: TokenGrant, now: datetime) -> None:
    store = TokenStore(settings.token_store_path)
    replaced = store.path.exists()
    store.save_grant(grant.refresh_token)
    renew_by = (now + REFRESH_TOKEN_LIFETIME).date().isoformat()
    _say(
        f"\nSigned in. OC's refresh token is in {store.path} (readable by you only)"
        + ("; it replaces the token stored there before." if replaced else ".")
    )
    _say(
        "`gateway serve` and `gateway oc check` start from it. OC's refresh tokens live a "
        f"year: sign in again before {renew_by}."
    )
    bootstrap = settings.oc_refresh_token.get_secret_value()
    if bootstrap and bootstrap != grant.refresh_token:
        _say(
            "\nWarning: GATEWAY_OC_REFRESH_TOKEN is set to another token, and a configured "
            "token wins over the store: `gateway serve` would start from it, not from this "
            "login. Unset it to use this login."
        )


def _print_secret(args: argparse.Namespace, grant: TokenGrant, now: datetime) -> None:
    sys.stdout.write(secret_manifest(args.secret_name, args.namespace, grant.refresh_token, now))
    sys.stdout.flush()
    _say(
        f"\nSigned in. The Secret {args.secret_name} (key {SECRET_KEY}) is on stdout; apply "
        "it with `kubectl apply --server-side -f -`, point the chart's "
        f"oc.refreshTokenSecret.name at it and restart the gateway's pods. Nothing was "
        "written here."
    )


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    try:
        grant = asyncio.run(_sign_in(settings, args))
    except ConfigurationError as exc:
        _say(f"gateway oc login: {exc}")
        return 2
    except LoginFailed as exc:
        _say(f"gateway oc login failed: {exc}")
        return 1
    now = datetime.now(UTC)
    if args.print_secret:
        _print_secret(args, grant, now)
    else:
        _store(settings, grant, now)
    return 0


def register(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    login = actions.add_parser(
        "login",
        help="sign in to OC in a browser and store the refresh token",
        description="Sign in to OC (GATEWAY_OC_BASE_URL, GATEWAY_OC_CLIENT_KEY) with OAuth's "
        "authorization-code flow and keep the refresh token for the gateway.",
    )
    login.add_argument(
        "--redirect-uri",
        help="where OC sends the browser back (default http://127.0.0.1:<free port>"
        "/oauth/callback); a loopback http URI is listened on, any other one is pasted",
    )
    login.add_argument(
        "--code", help="exchange this authorization code (with --redirect-uri) instead"
    )
    login.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds to wait for OC's redirect (default {DEFAULT_TIMEOUT_S:g})",
    )
    login.add_argument("--open", action="store_true", help="open the address in a browser")
    login.add_argument(
        "--print-secret",
        action="store_true",
        help="print a Kubernetes Secret with the refresh token instead of storing it",
    )
    login.add_argument(
        "--secret-name",
        type=_dns_name(_DNS_SUBDOMAIN, 253),
        default=DEFAULT_SECRET_NAME,
        help=f"name of the printed Secret (default {DEFAULT_SECRET_NAME})",
    )
    login.add_argument(
        "--namespace", type=_dns_name(_DNS_LABEL, 63), help="namespace of the printed Secret"
    )
    login.set_defaults(handler=run)

"""The console's doors: off by default, only on the ops port, the token checked in
constant time, failures counted and limited, CSRF-safe forms, strict headers, escaping."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.app import create_app, create_ops_app
from gateway.console.auth import FAILURES_PER_SOURCE, WINDOW_S, ConsoleToken, FailureLimit, Sessions
from gateway.errors import ConfigurationError
from gateway.lifespan import Gateway
from gateway.ops.recent import RecentDeliveries, WorkersRecent
from gateway.settings import Settings
from tests.conftest import SettingsFactory
from tests.helpers import TOKEN_PATH, outbound_callback
from tests.waiting import wait_for

TOKEN = "a-console-token-of-some-length"


@asynccontextmanager
async def consoles(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Gateway, Any]]:
    """The ops app of a started gateway that received two callbacks, a client for it
    (from 10.0.0.7), the gateway, and the app (for clients from other addresses)."""
    gateway = Gateway(settings)
    app = create_app(gateway=gateway)
    ops = create_ops_app(gateway)
    async with LifespanManager(app) as manager:
        webhooks = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://g"
        )
        async with webhooks:
            for n in range(2):
                await webhooks.post(
                    f"{TOKEN_PATH}/outbound",
                    content=outbound_callback(f"OCO{n}", "Submitted", message_id=str(n)),
                    headers={"content-type": "application/json"},
                )
        async with ops_client(ops) as client:
            yield client, gateway, ops


def ops_client(app: object, source: str = "10.0.0.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(source, 50000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://ops")


async def login_page(client: httpx.AsyncClient) -> str:
    page = await client.get("/console/login")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def failures(gateway: Gateway, reason: str) -> float:
    value = gateway.metrics.registry.get_sample_value(
        "gateway_console_auth_failures_total", {"reason": reason}
    )
    return value or 0.0


async def test_the_console_is_off_unless_its_token_is_set(make_settings: SettingsFactory) -> None:
    settings = make_settings(metrics_port=9999)
    assert not settings.console_enabled
    async with consoles(settings) as (client, _, _):
        assert (await client.get("/console/")).status_code == 404
        assert (await client.get("/console/login")).status_code == 404
        assert (await client.get("/metrics")).status_code == 200


def test_the_console_is_never_on_the_webhook_port(make_settings: SettingsFactory) -> None:
    with pytest.raises(ConfigurationError, match="metrics port only"):
        create_app(make_settings(metrics_port=0, console_token=TOKEN))


def test_a_token_file_that_cannot_be_read_stops_the_start(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings(metrics_port=9999, console_token_file=tmp_path / "missing")
    with pytest.raises(ConfigurationError, match="GATEWAY_CONSOLE_TOKEN_FILE"):
        create_ops_app(Gateway(settings))


async def test_login_session_and_logout(make_settings: SettingsFactory) -> None:
    async with consoles(make_settings(metrics_port=9999, console_token=TOKEN)) as (
        client,
        gateway,
        _,
    ):
        refused = await client.get("/console/")
        assert refused.status_code == 303
        assert refused.headers["location"] == "/console/login"
        assert (await client.get("/console/api/summary")).status_code == 401

        csrf = await login_page(client)
        wrong = await client.post("/console/login", data={"csrf": csrf, "token": "nope"})
        assert wrong.status_code == 401
        assert "Wrong token." in wrong.text
        assert failures(gateway, "wrong_token") == 1

        no_csrf = await client.post("/console/login", data={"token": TOKEN})
        assert no_csrf.status_code == 403
        assert failures(gateway, "csrf") == 1

        good = await client.post("/console/login", data={"csrf": csrf, "token": TOKEN})
        assert good.status_code == 303
        cookie = good.headers.get_list("set-cookie")[0]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Path=/console" in cookie
        assert TOKEN not in cookie
        assert TOKEN not in str(good.headers)

        summary = (await client.get("/console/api/summary")).json()
        assert summary["counters"]["received_total"] == 2
        assert summary["counters"]["accepted_total"] == 2
        assert [d["entity_keys"] for d in summary["deliveries"]] == [["OCO1"], ["OCO0"]]

        overview = await client.get("/console/")
        assert overview.status_code == 200
        session_csrf = re.search(r'name="csrf" value="([^"]+)"', overview.text)
        assert session_csrf is not None

        assert (await client.post("/console/logout", data={})).status_code == 403
        out = await client.post("/console/logout", data={"csrf": session_csrf.group(1)})
        assert out.status_code == 303
        client.cookies.clear()
        assert (await client.get("/console/")).status_code == 303


async def test_failures_are_limited_per_source(make_settings: SettingsFactory) -> None:
    settings = make_settings(metrics_port=9999, console_token=TOKEN)
    async with consoles(settings) as (guesser, gateway, ops), ops_client(ops, "10.0.0.8") as other:
        csrf = await login_page(guesser)
        for _ in range(FAILURES_PER_SOURCE):
            wrong = await guesser.post("/console/login", data={"csrf": csrf, "token": "guess"})
            assert wrong.status_code == 401
        limited = await guesser.post("/console/login", data={"csrf": csrf, "token": TOKEN})
        assert limited.status_code == 429  # not even the right token, for now
        assert 1 <= int(limited.headers["retry-after"]) <= WINDOW_S
        bearer = await guesser.get(
            "/console/api/summary", headers={"authorization": f"Bearer {TOKEN}"}
        )
        assert bearer.status_code == 429
        assert failures(gateway, "rate_limited") == 2
        assert failures(gateway, "wrong_token") == FAILURES_PER_SOURCE

        other_csrf = await login_page(other)
        fine = await other.post("/console/login", data={"csrf": other_csrf, "token": TOKEN})
        assert fine.status_code == 303


async def test_a_bearer_token_reads_the_json(make_settings: SettingsFactory) -> None:
    async with consoles(make_settings(metrics_port=9999, console_token=TOKEN)) as (
        client,
        gateway,
        _,
    ):
        good = await client.get(
            "/console/api/trace",
            params={"entity": "OCO1"},
            headers={"authorization": f"Bearer {TOKEN}"},
        )
        assert good.status_code == 200
        assert good.json()["deliveries"][0]["items"][0]["status"] == "created"
        wrong = await client.get("/console/api/summary", headers={"authorization": "Bearer guess"})
        assert wrong.status_code == 401
        assert failures(gateway, "wrong_token") == 1
        # A token in the URL is never looked at.
        query = await client.get("/console/api/summary", params={"token": TOKEN})
        assert query.status_code == 401


async def test_every_answer_is_locked_down_and_escaped(make_settings: SettingsFactory) -> None:
    async with consoles(make_settings(metrics_port=9999, console_token=TOKEN)) as (client, _, _):
        bearer = {"authorization": f"Bearer {TOKEN}"}
        evil = "<script>alert(1)</script>"
        answers = [
            await client.get("/console/login"),
            await client.get("/console/static/console.js"),
            await client.get("/console/static/../app.py"),
            await client.get("/console/trace", params={"entity": evil}, headers=bearer),
        ]
        for answer in answers:
            csp = answer.headers["content-security-policy"]
            assert "default-src 'none'" in csp
            assert "script-src 'self'" in csp
            assert "frame-ancestors 'none'" in csp
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["cache-control"] == "no-store"
        assert answers[1].headers["content-type"].startswith("text/javascript")
        assert answers[2].status_code == 404
        page = answers[3].text
        assert evil not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "<script" not in page.replace(
            '<script src="/console/static/console.js" defer></script>', ""
        )
        assert 'style="' not in page  # no inline style either: the CSP forbids it


def test_the_token_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first-token\n")
    now = [0.0]
    token = ConsoleToken(Settings(console_token_file=path), clock=lambda: now[0])
    assert token.matches("first-token")
    path.write_text("second-token\n")
    os.utime(path, (1_000_000, 1_000_000))
    assert token.matches("first-token")  # not looked at again yet
    now[0] += 10
    assert token.matches("second-token")
    assert not token.matches("first-token")
    path.unlink()  # the kubelet swapping the Secret: the last token stays
    now[0] += 10
    assert token.matches("second-token")


def test_an_empty_token_lets_nobody_in(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("\n")
    token = ConsoleToken(Settings(console_token_file=path))
    assert not token.matches("")


@pytest.mark.parametrize(
    ("failures_at", "asked_at", "retry_after"),
    [
        ([0.0] * 4, 1.0, None),  # under the limit
        ([0.0] * 5, 1.0, WINDOW_S - 1.0),  # at it: wait for the first to age out
        ([0.0] * 5, WINDOW_S, None),  # the window slid past them
        ([0.0, 10.0, 20.0, 30.0, 40.0], 50.0, 10.0),
    ],
)
def test_failure_limit_per_source(
    failures_at: list[float], asked_at: float, retry_after: float | None
) -> None:
    limit = FailureLimit()
    for at in failures_at:
        limit.failed("10.0.0.7", at)
    assert limit.retry_after("10.0.0.7", asked_at) == retry_after
    assert limit.retry_after("10.0.0.8", asked_at) is None


def test_failure_limit_overall() -> None:
    limit = FailureLimit(per_source=5, overall=6)
    for n in range(6):
        limit.failed(f"10.0.0.{n}", 0.0)
    assert limit.retry_after("10.9.9.9", 1.0) == WINDOW_S - 1.0  # many addresses guessing


def test_sessions_expire_and_are_bounded() -> None:
    now = [0.0]
    sessions = Sessions(ttl_s=60, clock=lambda: now[0])
    first = sessions.open()
    assert sessions.get(first.id) == first
    assert sessions.get("made-up") is None
    now[0] = 61
    assert sessions.get(first.id) is None
    many = [sessions.open() for _ in range(100)]
    assert sessions.get(many[0].id) is None
    assert sessions.get(many[-1].id) is not None


def test_the_recent_deliveries_ring() -> None:
    ring = RecentDeliveries(size=3, clock=lambda: 100.0)
    for n in range(5):
        ring.add("outbound", "accepted", f"d{n}", f"OCO{n},OCO{n}b", "10.0.0.1", 0.002)
    ring.add("outbound", "verification_failed", "", "", "10.0.0.2", 0.0001)
    newest = ring.newest()
    assert [d.delivery_id for d in newest] == ["", "d4", "d3"]
    assert newest[1].entity_keys == ("OCO4", "OCO4b")
    assert newest[1].latency_ms == 2.0
    assert newest[0].entity_keys == ()
    assert ring.sources() == {"d3": "10.0.0.1", "d4": "10.0.0.1"}


async def test_the_primary_shows_what_its_workers_published(tmp_path: Path) -> None:
    times = iter([1.0, 4.0, 2.0, 3.0])
    rings = [RecentDeliveries(clock=lambda: next(times)) for _ in range(2)]
    rings[0].add("outbound", "accepted", "a1", "OCO1", "10.0.0.1", 0.001)
    rings[0].add("outbound", "accepted", "a2", "OCO2", "10.0.0.1", 0.001)
    rings[1].add("return", "accepted", "b1", "RT1", "10.0.0.2", 0.001)
    rings[1].add("outbound", "duplicate", "b2", "OCO2", "10.0.0.2", 0.001)
    publishing = [
        asyncio.create_task(ring.publish(tmp_path / f"recent-w{i}.json", every_s=0.01))
        for i, ring in enumerate(rings)
    ]
    shown = WorkersRecent(tmp_path, size=3)
    try:
        await wait_for(lambda: len(shown.newest()) == 3)
    finally:
        for task in publishing:
            task.cancel()
    assert [d.delivery_id for d in shown.newest()] == ["a2", "b2", "b1"]  # by time, of both
    assert shown.sources() == {"a2": "10.0.0.1", "b1": "10.0.0.2", "b2": "10.0.0.2"}
    (tmp_path / "recent-w1.json").write_text("{not json")  # a worker caught mid-start
    assert [d.delivery_id for d in shown.newest()] == ["a2", "a1"]

"""Refusal at the protocol, over a real socket: past the admission limit a webhook request
is answered 503 with Retry-After before the app sees it, on a connection that stays
usable; places come back when answers are sent; health is never refused."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from gateway.ingest.admission import AdaptiveLimit, Admission
from gateway.ingest.overload import AdmissionMiddleware, OneWrite, admitting_protocol
from tests.waiting import wait_for
from tools.ports import free_port


class HeldApp:
    """Answers 200, but holds every webhook request until `release` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.seen: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.seen.append(scope["path"])
        while (await receive()).get("more_body"):
            pass
        if scope["path"].startswith("/webhooks/"):
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@contextlib.asynccontextmanager
async def serving(app: HeldApp, admission: Admission, refused: list[bytes]) -> AsyncIterator[str]:
    wrapped = AdmissionMiddleware(app, admission, refused.append)
    port = free_port()
    config = uvicorn.Config(
        wrapped,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_config=None,
        http=admitting_protocol(admission, refused.append),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await wait_for(lambda: server.started, timeout_s=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        app.release.set()
        server.should_exit = True
        await task


async def test_over_the_limit_the_protocol_answers_503_and_the_connection_lives_on() -> None:
    admission = Admission(AdaptiveLimit(target_lag_s=0.01, min_limit=1, max_limit=1, initial=1))
    app, refused = HeldApp(), list[bytes]()
    async with (
        serving(app, admission, refused) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as held_client,
    ):
        held = asyncio.create_task(held_client.post("/webhooks/oc/outbound", content=b"{}"))
        await wait_for(lambda: admission.in_flight == 1, timeout_s=10)
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            answers = [
                await client.post("/webhooks/oc/t0ken/outbound", content=b"{" + b" " * 5000 + b"}")
                for _ in range(3)
            ]
            health = await client.get("/livez")
            app.release.set()
            assert (await held).status_code == 200
            again = await client.post("/webhooks/oc/outbound", content=b"{}")
    assert [a.status_code for a in answers] == [503, 503, 503]
    assert all(a.headers["retry-after"] == "1" for a in answers)
    assert answers[0].json()["error"] == "overloaded"
    assert health.status_code == 200
    assert again.status_code == 200  # the same keep-alive connection, and a place again
    assert refused == [b"/webhooks/oc/t0ken/outbound"] * 3
    assert app.seen.count("/webhooks/oc/t0ken/outbound") == 0  # the app never saw them
    assert admission.in_flight == 0


async def test_every_place_comes_back_whatever_route_answered() -> None:
    admission = Admission(AdaptiveLimit(target_lag_s=0.01, min_limit=2, max_limit=2, initial=2))
    app, refused = HeldApp(), list[bytes]()
    app.release.set()
    async with serving(app, admission, refused) as url, httpx.AsyncClient(base_url=url) as client:
        for path in ("/webhooks/oc/outbound", "/webhooks/nowhere", "/webhooks/oc/x/y/z"):
            assert (await client.post(path, content=b"{}")).status_code == 200
    assert admission.in_flight == 0
    assert refused == []


class Wire:
    """A transport that records what reaches the socket, one entry per write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> str:
        return f"extra {name}"


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@pytest.mark.parametrize(
    ("calls", "on_the_wire", "closed"),
    [
        pytest.param([HEAD, b"ok"], [HEAD + b"ok"], False, id="head-and-body-in-one-write"),
        pytest.param([HEAD, b""], [HEAD], False, id="empty-body-still-sends-the-head"),
        pytest.param(
            [CONTINUE, HEAD, b"ok"], [CONTINUE, HEAD + b"ok"], False, id="interim-100-not-held"
        ),
        pytest.param([HEAD, b"o", b"k"], [HEAD + b"o", b"k"], False, id="later-parts-as-they-come"),
        pytest.param([HEAD, "close"], [HEAD], True, id="closing-writes-the-held-head-first"),
        pytest.param(["close"], [], True, id="closing-with-nothing-held"),
    ],
)
def test_an_answer_leaves_in_one_write(
    calls: list[bytes | str], on_the_wire: list[bytes], closed: bool
) -> None:
    wire = Wire()
    transport = OneWrite(wire)
    for call in calls:
        if call == "close":
            transport.close()
        else:
            assert isinstance(call, bytes)
            transport.write(call)
    assert wire.writes == on_the_wire
    assert transport.is_closing() is closed
    assert transport.get_extra_info("peername") == "extra peername"  # the rest passes through


async def test_webhook_answers_arrive_whole_over_a_socket_head_requests_too() -> None:
    admission = Admission(AdaptiveLimit(target_lag_s=0.01, min_limit=4, max_limit=4, initial=4))
    app, refused = HeldApp(), list[bytes]()
    app.release.set()
    async with serving(app, admission, refused) as url, httpx.AsyncClient(base_url=url) as client:
        posted = await client.post("/webhooks/oc/outbound", content=b"{}")
        headed = await client.head("/webhooks/oc/outbound")
        again = await client.post("/webhooks/oc/outbound", content=b"{}")
    assert (posted.status_code, posted.content) == (200, b"ok")
    assert (headed.status_code, headed.content) == (200, b"")
    assert (again.status_code, again.content) == (200, b"ok")
    assert admission.in_flight == 0

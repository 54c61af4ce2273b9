"""The loopback listener of `gateway oc login`: where OC sends the browser back.

A minimal HTTP/1.1 server on a loopback address. Each `GET <callback path>?...` becomes an
`Arrival` handed to `deliver`, and the browser's answer waits until the login has dealt with it
(the page then says whether the login worked). Any other request is answered at once:
404 for another path (the browser's favicon request), 405 for another method. When the
listener closes, arrivals nobody handled are told the login has ended and open
connections are closed, so closing never waits for a browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from gateway.oc.authorize import Loopback

MAX_HEAD_BYTES: Final = 16 * 1024
HEAD_TIMEOUT_S: Final = 10.0
ANSWER_TIMEOUT_S: Final = 120.0
CLOSE_WAIT_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class Page:
    status: int
    title: str
    text: str

    def render(self) -> bytes:
        body = (
            "<!doctype html><meta charset=utf-8><title>{t}</title><h1>{t}</h1><p>{x}</p>".format(
                t=html.escape(self.title, quote=False), x=html.escape(self.text, quote=False)
            )
        ).encode()
        reason = {200: "OK", 400: "Bad Request", 502: "Bad Gateway"}.get(self.status, "Error")
        head = (
            f"HTTP/1.1 {self.status} {reason}\r\n"
            "Content-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\n"
            "Referrer-Policy: no-referrer\r\n"
            "Connection: close\r\n\r\n"
        )
        return head.encode() + body


@dataclass(slots=True, eq=False)
class Arrival:
    """One request to the callback path: its target (path and query) and the page the
    browser will get, set by whoever handles the arrival."""

    target: str
    answer: asyncio.Future[Page] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def reply(self, page: Page) -> None:
        if not self.answer.done():
            self.answer.set_result(page)


class RedirectListener:
    def __init__(self, port: int, path: str, deliver: Callable[[Arrival], None]) -> None:
        self.port = port
        self.path = path
        self._deliver = deliver
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._pending: set[Arrival] = set()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, where: Loopback, deliver: Callable[[Arrival], None]
    ) -> AsyncIterator[RedirectListener]:
        """Listen on `where` (port 0 picks a free one) until the block ends, handing each
        request to the callback path to `deliver`."""
        family = socket.AF_INET6 if ":" in where.host else socket.AF_INET
        host = "127.0.0.1" if where.host == "localhost" else where.host
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.bind((host, where.port))
        except OSError:
            sock.close()
            raise
        listener = cls(sock.getsockname()[1], where.path, deliver)
        server = await asyncio.start_server(listener._serve, sock=sock)
        try:
            yield listener
        finally:
            server.close()
            await listener._close()
            await server.wait_closed()

    async def _close(self) -> None:
        ended = Page(400, "Login ended", "This login has ended; see the terminal.")
        for arrival in list(self._pending):
            arrival.reply(ended)
        # Connections answered just now finish writing their page; the rest (a browser's
        # spare connection that never sent a request) are closed after a moment.
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=CLOSE_WAIT_S)
        for writer in list(self._connections.values()):
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            async with asyncio.timeout(HEAD_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            page = await self._page_for(head)
            writer.write(page.render())
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # not a browser request worth an answer
        except ConnectionError:
            pass  # the browser went away
        finally:
            del self._connections[task]
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _page_for(self, head: bytes) -> Page:
        if len(head) > MAX_HEAD_BYTES:
            return Page(400, "Request too large", "The request head is too large.")
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3:
            return Page(400, "Bad request", "This is not an HTTP request.")
        method, target, _ = parts
        if urlsplit(target).path != self.path:
            return Page(404, "Not found", "This address only takes OC's redirect.")
        if method != "GET":
            return Page(405, "Method not allowed", "OC's redirect is a GET request.")
        arrival = Arrival(target)
        self._pending.add(arrival)
        self._deliver(arrival)
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT_S):
                return await asyncio.shield(arrival.answer)
        except TimeoutError:
            return Page(502, "No answer", "The login did not finish; see the terminal.")
        finally:
            self._pending.discard(arrival)

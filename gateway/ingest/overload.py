"""Refusing callbacks over the admission limit, before they cost: at the HTTP protocol,
and in the app for whatever the protocol did not see.

Under overload most callbacks must be refused, and a refusal that goes through the ASGI
app (a task, the router, a response object) costs a quarter of an accepted callback:
refusing three for every one taken would leave little CPU for the one. This uvicorn
protocol (httptools, as uvicorn's own) takes the admission decision as soon as a
webhook request's headers are parsed: past the limit it discards the body and writes a
prepared 503 with Retry-After itself (about a tenth of the ASGI path's cost, measured in
bench/README.md); within it, the request goes on to the app holding its place, which
the app gives back when it answers. Health, metrics and anything else are never refused.

A webhook answer leaves in one write: uvicorn writes the status line and headers, then
the body, two write(2)s and two TCP segments for a few hundred bytes; the cycle's
transport here holds the head until the body comes (`OneWrite`).

`AdmissionMiddleware` wraps the webhook endpoint: it takes a place for a request the
protocol did not admit (in-process tests, another server), refuses with the same 503
when there is none, and gives every place back when the answer is sent, whatever route
answered.

The protocol relies on uvicorn's `HttpToolsProtocol` parser callbacks (uvicorn is pinned
in uv.lock; tests/ingest/test_overload.py runs it over a real socket).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.ingest.admission import Admission

ADMITTED: Final = "gateway.admitted"
"""Key in the ASGI scope's extensions of a request that already holds its place."""
WEBHOOK_PREFIX: Final = b"/webhooks/"
WEBHOOK_PREFIX_TEXT: Final = WEBHOOK_PREFIX.decode()
RETRY_AFTER_S: Final = 1


_BODY: Final = json.dumps(
    {"error": "overloaded", "message": "too many callbacks in flight; retry shortly"},
    separators=(",", ":"),
).encode()


def _refusal(retry_after_s: int, body: bytes = _BODY) -> bytes:
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "content-type: application/json\r\n"
        f"retry-after: {retry_after_s}\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


_REFUSAL: Final = _refusal(RETRY_AFTER_S)


def admitting_protocol(
    admission: Admission, refused: Callable[[bytes], None]
) -> type[HttpToolsProtocol]:
    """The protocol class for uvicorn's `http` setting, bound to `admission`; `refused`
    hears of each refusal (the request's path, for metrics)."""

    class AdmittingProtocol(HttpToolsProtocol):
        _refusing = False

        def on_headers_complete(self) -> None:
            webhook = self.url.startswith(WEBHOOK_PREFIX)
            if webhook and self._idle():
                if not admission.enter():
                    self._refusing = True
                    refused(self.url)
                    return
                scope: Any = self.scope
                scope.setdefault("extensions", {})[ADMITTED] = True
            before = self.cycle
            super().on_headers_complete()
            cycle: Any = self.cycle
            started = cycle is not None and cycle is not before  # not an upgrade
            if webhook and started and cycle.scope["method"] != "HEAD":  # HEAD has no body
                cycle.transport = OneWrite(cycle.transport)

        def _idle(self) -> bool:
            # Pipelined requests wait for the one before them; they go the usual way.
            cycle: Any = self.cycle
            return (cycle is None or cycle.response_complete) and not self.expect_100_continue

        def on_body(self, body: bytes) -> None:
            if not self._refusing:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if not self._refusing:
                super().on_message_complete()
                return
            self._refusing = False
            transport: Any = self.transport
            transport.write(_REFUSAL)
            if not self.parser.should_keep_alive():
                transport.close()
            elif self.timeout_keep_alive_task is None:
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler
                )

    return AdmittingProtocol


_INTERIM: Final = b"HTTP/1.1 1"


class OneWrite:
    """A request cycle's transport that holds the response's head (its first write, not
    an interim `100 Continue`) until the first body part, and writes both at once.
    uvicorn writes a body part for every answer but one to HEAD, so nothing waits
    longer than its body; closing writes what is held first."""

    __slots__ = ("_answered", "_head", "_transport")

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._head = b""
        self._answered = False

    def write(self, data: bytes) -> None:
        if not self._answered and not data.startswith(_INTERIM):
            self._answered = True
            self._head = data
            return
        if self._head:
            data, self._head = self._head + data, b""
        self._transport.write(data)

    def close(self) -> None:
        if self._head:
            head, self._head = self._head, b""
            self._transport.write(head)
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class AdmissionMiddleware:
    """Holds a place of `admission` for every webhook request while the app answers it."""

    def __init__(
        self,
        app: ASGIApp,
        admission: Admission,
        refused: Callable[[bytes], None],
    ) -> None:
        self._app = app
        self._admission = admission
        self._refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("raw_path") or scope.get("path", "").encode()
        if scope["type"] != "http" or not path.startswith(WEBHOOK_PREFIX):
            await self._app(scope, receive, send)
            return
        admission = self._admission
        if not scope.get("extensions", {}).get(ADMITTED) and not admission.enter():
            self._refused(path)
            await _send_refusal(send)
            return
        try:
            await self._app(scope, receive, send)
        finally:
            admission.leave()


async def _send_refusal(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"retry-after", str(RETRY_AFTER_S).encode()),
                (b"content-length", str(len(_BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _BODY})

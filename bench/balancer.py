"""A round-robin TCP balancer for the churn run: what kube-proxy is to a Service.

Each new connection goes to the next replica in the balancer; a replica that refuses the
connection is skipped for the next one (as a proxy retrying on connect errors does).
Taking a replica out sends it no new connections and leaves those it has alone, which is
what a terminating pod's endpoint removal does before its preStop pause ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

_CHUNK = 65536


class Balancer:
    def __init__(self) -> None:
        self.port = 0
        self._backends: list[int] = []
        self._turn = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self.connections: Counter[int] = Counter()  # per backend port
        self.refused = 0  # connections no backend took

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def add(self, port: int) -> None:
        if port not in self._backends:
            self._backends.append(port)

    def remove(self, port: int) -> None:
        if port in self._backends:
            self._backends.remove(port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._pipes.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = None
        for _ in range(len(self._backends)):
            port = self._backends[self._turn % len(self._backends)]
            self._turn += 1
            try:
                upstream = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            self.connections[port] += 1
            break
        if upstream is None:
            self.refused += 1
            await _close(writer)
            return
        up_reader, up_writer = upstream
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until one side is done, then close the other, as an L4 proxy does."""
    try:
        while data := await source.read(_CHUNK):
            sink.write(data)
            await sink.drain()
    except OSError:
        pass
    finally:
        await _close(sink)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()

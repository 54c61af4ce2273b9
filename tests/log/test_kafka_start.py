"""`start_client`: a client's start that cancellations do not cut short (aiokafka leaks
the bootstrap connection of a start cancelled while it asks for the first metadata)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.log.kafka.common import start_client


class SlowStart:
    """Stands in for an aiokafka client whose start waits for `go` (then fails, maybe)."""

    def __init__(self, error: Exception | None = None) -> None:
        self.go = asyncio.Event()
        self.error = error
        self.started = False

    async def start(self) -> None:
        await self.go.wait()
        if self.error is not None:
            raise self.error
        self.started = True


@pytest.mark.parametrize("cancels", [1, 3])
async def test_a_cancelled_start_still_runs_to_its_end_before_the_cancellation(
    cancels: int,
) -> None:
    client = SlowStart()
    starting = asyncio.create_task(start_client(client))
    await asyncio.sleep(0)
    for _ in range(cancels):  # a stop() cut short cancels what it awaited again
        starting.cancel()
        await asyncio.sleep(0)
    assert not starting.done()  # still waiting for the start
    client.go.set()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert client.started  # so the caller's stop() closes a whole client


async def test_a_start_that_fails_after_a_cancellation_gives_the_cancellation() -> None:
    client = SlowStart(ConnectionError("refused"))
    starting = asyncio.create_task(start_client(client))
    await asyncio.sleep(0)
    starting.cancel()
    await asyncio.sleep(0)
    client.go.set()
    with pytest.raises(asyncio.CancelledError):
        await starting


async def test_an_uncancelled_start_returns_or_raises_as_the_client_does() -> None:
    ok, failing = SlowStart(), SlowStart(ConnectionError("refused"))
    ok.go.set()
    failing.go.set()
    await start_client(ok)
    assert ok.started
    with pytest.raises(ConnectionError):
        await start_client(failing)

"""Small asyncio helpers shared by the gateway's long-running loops."""

from __future__ import annotations

import asyncio
import contextlib

from gateway.clock import Clock


async def wait_set(
    event: asyncio.Event, timeout_s: float | None, clock: Clock | None = None
) -> bool:
    """Wait until `event` is set, for at most `timeout_s` (None: no limit); returns
    whether it is set. Loops use it as a sleep that a stop request cuts short. With a
    `clock`, the timeout runs on it (a fake clock in tests)."""
    if clock is None or timeout_s is None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await event.wait()
        return event.is_set()
    waiter = asyncio.ensure_future(event.wait())
    sleeper = asyncio.ensure_future(clock.sleep(timeout_s))
    try:
        await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiter, sleeper):
            task.cancel()
        await asyncio.gather(waiter, sleeper, return_exceptions=True)
    return event.is_set()

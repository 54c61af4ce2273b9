"""Small asyncio helpers shared by the gateway's long-running loops."""

from __future__ import annotations

import asyncio
import contextlib


async def wait_set(event: asyncio.Event, timeout_s: float | None) -> bool:
    """Wait until `event` is set, for at most `timeout_s` (None: no limit); returns
    whether it is set. Loops use it as a sleep that a stop request cuts short."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await event.wait()
    return event.is_set()

"""The one way tests wait: poll a condition (plain or awaitable) until it holds, with a
deadline. Never a bare sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Condition = Callable[[], Awaitable[bool]] | Callable[[], bool]


async def wait_for(condition: Condition, *, timeout_s: float = 60.0, every_s: float = 0.05) -> None:
    """Poll `condition` every `every_s` until it is true; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(every_s)

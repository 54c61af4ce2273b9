"""Small asyncio helpers shared by the gateway's long-running loops, and where tasks wait
(for the log line of a shutdown that outlasted its grace)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

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


_PACKAGE = Path(__file__).resolve().parent  # gateway/
_OWN_FILES = ("gateway/",)


def _short(filename: str) -> str:
    """gateway/... for the gateway's own files, the bare file name for the rest."""
    path = Path(filename)
    if path.is_relative_to(_PACKAGE):
        return f"gateway/{path.relative_to(_PACKAGE)}"
    return path.name


def where_waiting(cancelled: set[asyncio.Task[None]]) -> dict[str, list[str]]:
    """The cancelled tasks and every other task running the gateway's code, by name,
    with where each waits: what a shutdown that outlasted its grace was waiting for."""
    found = {}
    for task in asyncio.all_tasks():
        frames = _waiting_in(task)
        ours = any(frame.startswith(_OWN_FILES) for frame in frames)
        if task in cancelled or (ours and task is not asyncio.current_task()):
            found[task.get_name()] = frames
    return found


def _waiting_in(task: asyncio.Task[Any]) -> list[str]:
    """Where a task is waiting, innermost last (file:line function), for the log."""
    frames: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None and len(frames) < 24:
        if isinstance(awaited, asyncio.Task):  # awaiting another task: follow it
            awaited = awaited.get_coro()
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is not None:
            code = frame.f_code
            frames.append(f"{_short(code.co_filename)}:{frame.f_lineno} {code.co_name}")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return frames[-8:]

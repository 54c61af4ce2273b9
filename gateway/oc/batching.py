"""Batching, coalescing and caching of OC look-ups by key.

A `Batcher` answers "the value for each of these keys" for many concurrent callers with
as few OC requests as possible:

1. a key with a live cache entry is answered at once (a cache hit);
2. a key already queued or in flight is answered by that same fetch (coalesced, counted
   as a cache hit too): identical look-ups never run twice at the same time;
3. any other key joins the open batch, which is fetched `window_s` after its first key
   arrived, or at once when it reaches `max_batch` keys, or when a caller asks for all it
   needs in one go (`at_once`: a processor batch has no one else to wait for);
4. each fetched value is cached per key for the cache's TTL.

A fetch is shared, so a caller that stops waiting (its deadline passed) does not cancel
it: the fetch finishes and fills the cache for whoever asks next (e.g. the follow-up
enrichment). A failed fetch fails every key of its batch; nothing is cached then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Generic, TypeVar

from gateway.clock import Clock
from gateway.errors import OcUnavailable
from gateway.oc.cache import MISSING, TtlCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Fetch = Callable[[list[K]], Awaitable[Mapping[K, V]]]


class Batcher(Generic[K, V]):
    def __init__(
        self,
        fetch: Fetch[K, V],
        *,
        window_s: float,
        max_batch: int,
        cache: TtlCache[K, V],
        clock: Clock,
        absent: V,
        precheck: Callable[[], None] | None = None,
        on_hit: Callable[[], None] | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        """`fetch(keys)` returns the values it found; keys it leaves out get `absent`.
        `precheck()` runs before new keys are queued and may raise to refuse them (an
        open breaker); cached and in-flight keys are still answered."""
        self._fetch = fetch
        self._window_s = window_s
        self._max_batch = max_batch
        self._cache = cache
        self._clock = clock
        self._absent = absent
        self._precheck = precheck
        self._on_hit = on_hit
        self._on_batch = on_batch
        self._pending: dict[K, asyncio.Future[V]] = {}
        self._queued: list[K] = []
        self._timer: asyncio.Task[None] | None = None
        self._fetches: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def in_flight(self) -> int:
        """Keys queued or being fetched."""
        return len(self._pending)

    async def get(self, key: K) -> V:
        return (await self.get_many([key]))[key]

    async def get_many(self, keys: Iterable[K], *, at_once: bool = False) -> dict[K, V]:
        """The value of every key (duplicates asked once); raises the fetch's error.
        `at_once` sends the open batch, with these keys in it, without waiting for the
        window."""
        results: dict[K, V] = {}
        waiting: dict[K, asyncio.Future[V]] = {}
        new: list[K] = []
        for key in dict.fromkeys(keys):
            value = self._cache.get(key)
            if value is not MISSING:
                results[key] = value
                self._hit()
            elif (shared := self._pending.get(key)) is not None:
                waiting[key] = shared
                self._hit()
            else:
                new.append(key)
        if new:
            if self._closed:
                raise OcUnavailable("the OC client is closed")
            if self._precheck is not None:
                self._precheck()
            for key in new:
                waiting[key] = self._enqueue(key)
            if at_once:
                self._flush()
        if waiting:
            # asyncio.wait leaves the shared futures alone when this caller is cancelled.
            await asyncio.wait(waiting.values())
            for key, future in waiting.items():
                results[key] = future.result()
        return results

    def _hit(self) -> None:
        if self._on_hit is not None:
            self._on_hit()

    def _enqueue(self, key: K) -> asyncio.Future[V]:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        self._queued.append(key)
        if len(self._queued) >= self._max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.create_task(self._flush_later())
        return future

    async def _flush_later(self) -> None:
        await self._clock.sleep(self._window_s)
        self._timer = None
        self._flush()

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        keys, self._queued = self._queued, []
        if keys:
            task = asyncio.create_task(self._run(keys))
            self._fetches.add(task)
            task.add_done_callback(self._fetches.discard)

    async def _run(self, keys: list[K]) -> None:
        if self._on_batch is not None:
            self._on_batch(len(keys))
        try:
            found = await self._fetch(keys)
        except asyncio.CancelledError:
            self._fail(keys, OcUnavailable("the OC client is closed"))
            raise
        except Exception as exc:
            self._fail(keys, exc)
            return
        for key in keys:
            value = found.get(key, self._absent)
            self._cache.put(key, value)
            future = self._pending.pop(key)
            if not future.done():
                future.set_result(value)

    def _fail(self, keys: list[K], error: Exception) -> None:
        for key in keys:
            future = self._pending.pop(key)
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved here; each waiter re-raises it via result()

    async def close(self) -> None:
        """Stop: queued and in-flight look-ups fail with `OcUnavailable`."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        queued, self._queued = self._queued, []
        self._fail(queued, OcUnavailable("the OC client is closed"))
        for task in list(self._fetches):
            task.cancel()
        await asyncio.gather(*self._fetches, return_exceptions=True)

"""A small concurrent callback sender for fault tests (benchmarks use k6, see bench/).

Each sender owns its own orders and sends their status changes one after another, so
the order in which one key's callbacks were acknowledged is the order they must keep.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from tests.helpers import outbound_callback

STATUSES = ("CREATED", "ALLOCATED", "PICKING", "PACKED", "SHIPPED", "DELIVERED")

Post = Callable[[bytes], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Ack:
    delivery_id: str
    order: str
    step: int


@dataclass
class Load:
    """Sends until `stop` is set or `limit` callbacks were acknowledged."""

    senders: int = 4
    orders_per_sender: int = 5
    limit: int | None = None
    acked: list[Ack] = field(default_factory=list)
    answers: dict[int, int] = field(default_factory=dict)  # status code -> count
    errors: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def acked_ids(self) -> set[str]:
        return {a.delivery_id for a in self.acked}

    def order_of(self, order: str) -> list[str]:
        return [a.delivery_id for a in self.acked if a.order == order]

    async def run(self, post: Post) -> None:
        await asyncio.gather(*(self._sender(n, post) for n in range(self.senders)))

    async def _sender(self, n: int, post: Post) -> None:
        orders = [f"OCO{n:03d}{k:09d}GB" for k in range(self.orders_per_sender)]
        step = 0
        while not self.stop.is_set():
            for order in orders:
                body = outbound_callback(
                    order,
                    STATUSES[step % len(STATUSES)],
                    message_id=f"{order}-{step}",
                    status_time=f"2026-11-27T10:00:00.{step:06d}+0800",
                )
                await self._send_until_answered(order, step, body, post)
                if self.limit is not None and len(self.acked) >= self.limit:
                    self.stop.set()
                if self.stop.is_set():
                    return
            step += 1

    async def _send_until_answered(self, order: str, step: int, body: bytes, post: Post) -> None:
        # Like a webhook sender: retry the same callback until it is acknowledged, so a
        # key's later changes are never sent before its earlier ones were accepted.
        while not self.stop.is_set():
            try:
                response = await post(body)
            except httpx.HTTPError:
                self.errors += 1
                await asyncio.sleep(0.05)
                continue
            self.answers[response.status_code] = self.answers.get(response.status_code, 0) + 1
            if response.status_code == 200:
                self.acked.append(Ack(delivery_of(body), order, step))
                return
            await asyncio.sleep(0.05)


def delivery_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()

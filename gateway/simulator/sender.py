"""The callback sender: fires the world's callbacks at a URL at a fixed arrival rate.

Callbacks come from a `CallbackSource`: the sender's own seeded world (`WorldSource`) or a
running simulator (`SimulatorSource`, via POST /_sim/callbacks/next), so the callbacks agree
with what that simulator's look-ups answer. Either can be given one of OC's outbound order
statuses: every callback is then about a new order the world took to that status. Each
one is signed like OC would (see signing.py) and POSTed to the target; the gateway's route
for the callback's kind is used when the target ends in a kind segment or contains
`{kind}`.

`drop_rate` skips callbacks on purpose (the world still advanced; they are listed in the
report) so reconciliation can be tested; `duplicate_rate` sends a callback twice, the
second time as a new delivery (new webhook-id) with the same body. Non-2xx answers and
connection errors are retried up to `attempts` times (honouring Retry-After), with the
same webhook-id, like a webhook sender.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Final, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx

from gateway.simulator.data import SimCallback, World
from gateway.simulator.report import SendReport
from gateway.simulator.signing import CallbackSigner
from schemas.callbacks import CallbackKind

ROUTE_SEGMENTS: Final[dict[CallbackKind, str]] = {
    "outbound": "outbound",
    "return": "returns",
    "inventory": "inventory",
}
_KIND_SEGMENTS: Final = frozenset({"outbound", "return", "returns", "inventory"})
MAX_RETRY_AFTER_S: Final = 30.0


def target_for(target: str, kind: CallbackKind) -> str:
    """The URL for a callback of `kind`: `{kind}` filled in, or a trailing kind segment
    replaced by this kind's route segment; any other URL is used as given."""
    segment = ROUTE_SEGMENTS[kind]
    if "{kind}" in target:
        return target.replace("{kind}", segment)
    parts = urlsplit(target)
    head, _, last = parts.path.rstrip("/").rpartition("/")
    if last in _KIND_SEGMENTS:
        return urlunsplit(parts._replace(path=f"{head}/{segment}"))
    return target


class CallbackSource(Protocol):
    async def take(self, count: int, kind: CallbackKind | None) -> list[SimCallback]:
        """The next `count` callbacks (advancing the world)."""
        ...


class WorldSource:
    """Callbacks from a world in this process (all in OC's `status`, when given)."""

    def __init__(self, world: World, status: str | None = None) -> None:
        self.world = world
        self.status = status

    async def take(self, count: int, kind: CallbackKind | None) -> list[SimCallback]:
        return self.world.next_callbacks(count, kind, self.status)


class SimulatorSource:
    """Callbacks from a running simulator, so its look-ups agree with them (all in OC's
    `status`, when given)."""

    def __init__(
        self, client: httpx.AsyncClient, simulator_url: str, status: str | None = None
    ) -> None:
        self.client = client
        self.url = simulator_url.rstrip("/") + "/_sim/callbacks/next"
        self.status = status

    async def take(self, count: int, kind: CallbackKind | None) -> list[SimCallback]:
        params: dict[str, str | int] = {"count": count}
        if kind is not None:
            params["kind"] = kind
        if self.status is not None:
            params["status"] = self.status
        response = await self.client.post(self.url, params=params)
        response.raise_for_status()
        return [SimCallback.from_json(c) for c in response.json()["callbacks"]]


@dataclass(frozen=True, slots=True)
class SendConfig:
    target: str
    count: int = 100
    rate: float = 50.0  # deliveries per second; 0 = as fast as concurrency allows
    concurrency: int = 16
    kind: CallbackKind | None = None
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    attempts: int = 1
    retry_backoff_s: float = 0.2
    seed: int = 1
    batch: int = 200


@dataclass(slots=True)
class _Run:
    config: SendConfig
    client: httpx.AsyncClient
    signer: CallbackSigner
    report: SendReport
    started: float = field(default_factory=time.perf_counter)
    slot: int = 0

    async def pace(self) -> None:
        """Wait for this delivery's slot in the fixed-rate schedule."""
        if self.config.rate > 0:
            due = self.started + self.slot / self.config.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        self.slot += 1

    async def deliver(self, callback: SimCallback, webhook_id: str) -> None:
        url = target_for(self.config.target, callback.kind)
        path = urlsplit(url).path or "/"
        for attempt in range(1, self.config.attempts + 1):
            headers = {"Content-Type": "application/json"}
            headers |= self.signer.headers(path, callback.body, webhook_id, int(time.time()))
            began = time.perf_counter()
            status: int | None
            retry_after: str | None = None
            try:
                response = await self.client.post(url, content=callback.body, headers=headers)
                status, retry_after = response.status_code, response.headers.get("Retry-After")
            except httpx.HTTPError:
                status = None
            self.report.attempt(status, (time.perf_counter() - began) * 1000)
            done = status is not None and 200 <= status < 300
            if done or attempt == self.config.attempts:
                self.report.delivered(callback.kind, status)
                return
            self.report.retries += 1
            await asyncio.sleep(self._backoff(attempt, retry_after))

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), MAX_RETRY_AFTER_S)
            except ValueError:
                pass
        return float(self.config.retry_backoff_s * 2 ** (attempt - 1))


async def send_callbacks(
    config: SendConfig,
    source: CallbackSource,
    client: httpx.AsyncClient,
    signer: CallbackSigner,
) -> SendReport:
    """Send `config.count` callbacks from `source` and report how they were answered."""
    rng = random.Random(config.seed)
    report = SendReport(target=config.target, requested=config.count, signing=signer.methods)
    run = _Run(config, client, signer, report)
    slots = asyncio.Semaphore(max(1, config.concurrency))
    pending: set[asyncio.Task[None]] = set()

    async def guarded(callback: SimCallback, webhook_id: str) -> None:
        try:
            await run.deliver(callback, webhook_id)
        finally:
            slots.release()

    taken = 0
    while taken < config.count:
        batch = await source.take(min(config.batch, config.count - taken), config.kind)
        if not batch:
            break
        taken += len(batch)
        for callback in batch:
            if rng.random() < config.drop_rate:
                report.drop(callback)
                continue
            webhook_ids = [callback.message_id]
            if rng.random() < config.duplicate_rate:
                webhook_ids.append(f"{callback.message_id}.dup")
                report.duplicates += 1
            for webhook_id in webhook_ids:
                await run.pace()
                await slots.acquire()
                task = asyncio.create_task(guarded(callback, webhook_id))
                pending.add(task)
                task.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)
    report.elapsed_s = time.perf_counter() - run.started
    return report

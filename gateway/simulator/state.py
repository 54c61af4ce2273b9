"""The simulator's state: configuration, the world, OAuth, faults and counters.

One `Simulator` per app (`create_app` builds it; `app.state.simulator` holds it), so
tests and benchmarks can also drive it in-process without HTTP.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from gateway.simulator.auth import AuthStore
from gateway.simulator.data import Clock, SimCallback, World, WorldSize, utc_now
from gateway.simulator.faults import FaultInjector, FaultSettings
from gateway.simulator.stats import Stats
from schemas.callbacks import CallbackKind

DEFAULT_CLIENT_KEY: Final = "dev-client-key"
DEFAULT_SECRET_KEY: Final = "dev-secret-key"


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything a simulator starts with. The OC key pair defaults to the development
    pair of `make run`; the CLI takes it from GATEWAY_OC_CLIENT_KEY / _SECRET_KEY."""

    seed: int = 1
    client_key: str = DEFAULT_CLIENT_KEY
    secret_key: str = DEFAULT_SECRET_KEY
    faults: FaultSettings = field(default_factory=FaultSettings)
    world_size: WorldSize = field(default_factory=WorldSize)
    epoch: datetime | None = None


class Simulator:
    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        clock: Clock = utc_now,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or SimulatorConfig()
        self.world = World(
            self.config.seed, size=self.config.world_size, clock=clock, epoch=self.config.epoch
        )
        self.faults = FaultInjector(
            self.config.faults, seed=self.config.seed, wall_clock=wall_clock
        )
        self.auth = AuthStore(
            self.config.client_key,
            token_ttl_s=self.config.faults.token_ttl_s,
            rotate_refresh_tokens=self.config.faults.rotate_refresh_tokens,
            clock=wall_clock,
        )
        self.stats = Stats()
        self._request_ids = itertools.count(1)

    def update_faults(self, changes: dict[str, Any]) -> FaultSettings:
        """Apply a partial fault update (ValidationError when it does not fit)."""
        settings = self.faults.update(changes)
        self.auth.token_ttl_s = settings.token_ttl_s
        self.auth.rotate_refresh_tokens = settings.rotate_refresh_tokens
        return settings

    def reset_faults(self) -> FaultSettings:
        """Back to the faults the simulator started with."""
        return self.update_faults(self.config.faults.model_dump())

    def next_request_id(self) -> str:
        return f"sim-req-{next(self._request_ids):08d}"

    def next_callbacks(
        self, count: int, kind: CallbackKind | None = None, status: str | None = None
    ) -> list[SimCallback]:
        callbacks = self.world.next_callbacks(count, kind, status)
        self.stats.callbacks_generated += len(callbacks)
        return callbacks

"""Misbehaviour on demand: latency, errors, success:false, 429s, outages, token settings.

`FaultSettings` is what `POST /_sim/faults` and the `serve` flags set; `FaultInjector`
decides, per request, from a seeded RNG, which misbehaviour (if any) that request gets,
so a fixed seed and request order give the same faults every run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.tolerant import parse_oc_datetime

FaultKind = Literal["outage", "rate_limited", "fault_500", "fault_success_false"]
TokenFailure = Literal["http_200", "http_401"]


class FaultSettings(BaseModel):
    """How badly the simulated OC behaves. Every field can be changed at run time."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    latency_ms: float = Field(0.0, ge=0, description="Added to every OC answer.")
    latency_jitter_ms: float = Field(0.0, ge=0, description="Plus a uniform 0..this.")
    error_rate: float = Field(0.0, ge=0, le=1, description="Share of HTTP 500 answers.")
    success_false_rate: float = Field(
        0.0, ge=0, le=1, description="Share of HTTP 200 answers with success:false (busy)."
    )
    rate_limit_rate: float = Field(
        0.0, ge=0, le=1, description="Share of HTTP 429 answers (with Retry-After)."
    )
    retry_after_s: int = Field(1, ge=0, description="Retry-After of 429 and 503 answers.")
    down: bool = Field(False, description="Answer every OC request with HTTP 503.")
    outage_until: float | None = Field(
        None, description="Epoch seconds (or an ISO datetime) until which OC answers 503."
    )
    token_ttl_s: float = Field(3600.0, gt=0, description="Lifetime of new access tokens.")
    token_failure: TokenFailure = Field(
        "http_200",
        description="How a bad or expired token is answered: HTTP 200 + success:false, "
        "or HTTP 401 (with the same body).",
    )
    rotate_refresh_tokens: bool = Field(
        False, description="Issue a new refresh token on every refresh (the old one dies)."
    )
    order_list_limit: int | None = Field(
        None,
        ge=1,
        description="Refuse (limit exceeded) an Outbound Order Query v2 that names more "
        "orders than this, as an OC account with a list limit of its own would; None: only "
        "the documented 1,000.",
    )
    endpoints: list[str] = Field(
        default_factory=list,
        description="Endpoint names (as in /_sim/stats, e.g. return_orders, oauth_token) "
        "that latency, errors, 429s and outages apply to; empty: every endpoint.",
    )

    @field_validator("outage_until", mode="before")
    @classmethod
    def _epoch_seconds(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_oc_datetime(value).timestamp()
        return value

    def updated(self, changes: dict[str, Any], now: float) -> FaultSettings:
        """These settings with `changes` applied; `outage_for_s` sets `outage_until`."""
        changes = dict(changes)
        if "outage_for_s" in changes:
            seconds = float(changes.pop("outage_for_s"))
            changes["outage_until"] = now + seconds if seconds > 0 else None
        return FaultSettings.model_validate({**self.model_dump(), **changes})


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    status: int
    retry_after_s: int | None = None


class FaultInjector:
    """Per-request fault decisions from a seeded RNG."""

    def __init__(
        self, settings: FaultSettings, seed: int, wall_clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self._rng = random.Random(seed)
        self._wall_clock = wall_clock

    def update(self, changes: dict[str, Any]) -> FaultSettings:
        self.settings = self.settings.updated(changes, self._wall_clock())
        return self.settings

    def applies_to(self, endpoint: str) -> bool:
        """Whether the faults concern `endpoint` (every endpoint unless some are named)."""
        return not self.settings.endpoints or endpoint in self.settings.endpoints

    def is_down(self) -> bool:
        until = self.settings.outage_until
        return self.settings.down or (until is not None and self._wall_clock() < until)

    def latency_s(self, endpoint: str = "") -> float:
        if not self.applies_to(endpoint):
            return 0.0
        jitter = (
            self._rng.uniform(0, self.settings.latency_jitter_ms)
            if (self.settings.latency_jitter_ms)
            else 0.0
        )
        return (self.settings.latency_ms + jitter) / 1000

    def decide(self, endpoint: str = "") -> Fault | None:
        """The misbehaviour for the next request to `endpoint`, or None to answer normally."""
        s = self.settings
        if not self.applies_to(endpoint):
            return None
        if self.is_down():
            return Fault("outage", 503, s.retry_after_s)
        roll = self._rng.random()
        if roll < s.rate_limit_rate:
            return Fault("rate_limited", 429, s.retry_after_s)
        roll -= s.rate_limit_rate
        if roll < s.error_rate:
            return Fault("fault_500", 500)
        roll -= s.error_rate
        if roll < s.success_false_rate:
            return Fault("fault_success_false", 200)
        return None

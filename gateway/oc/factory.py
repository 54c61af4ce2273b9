"""Building the OC client from settings (called by the lifespan and the commands)."""

from __future__ import annotations

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import ConfigurationError
from gateway.oc.client import OcClient
from gateway.oc.tokens import TokenStore
from gateway.ops.metrics import Metrics
from gateway.ops.tracing import Tracing
from gateway.settings import Settings


def build_client(
    settings: Settings,
    metrics: Metrics,
    tracing: Tracing | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> OcClient | None:
    """The OC client, or None when `oc_base_url` is empty (enrichment off). The caller
    awaits `client.start()` before use and `client.close()` at shutdown. Raises
    `ConfigurationError` when OC is configured without the key pair or without any
    refresh token (settings or token store)."""
    if not settings.oc_base_url.strip():
        return None
    if not settings.oc_client_key or not settings.oc_secret_key.get_secret_value():
        raise ConfigurationError("oc_base_url is set but oc_client_key/oc_secret_key are not")
    bootstrap = settings.oc_refresh_token.get_secret_value()
    if not bootstrap and TokenStore(settings.token_store_path).load() is None:
        raise ConfigurationError(
            f"oc_base_url is set but there is no OC refresh token (oc_refresh_token, or "
            f"a stored one in {settings.token_store_path})"
        )
    return OcClient(settings, metrics, tracing=tracing, clock=clock)

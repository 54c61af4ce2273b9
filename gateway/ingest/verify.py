"""Is this callback genuine? Pure: headers, raw bytes, secrets and a clock in; a verdict out.

Every configured method must pass (they combine with AND): OC's own signature
(clientKey + vAuthorization), Standard Webhooks (webhook-id/-timestamp/-signature), a
secret path token, and a source-address allow-list. Several secrets can be active at
once for rotation, and every secret comparison is constant-time. With nothing
configured, every request fails unless the insecure development flag is set; the
gateway refuses to start in that state anyway (see `check_configured`).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import ConfigurationError
from gateway.ingest import standard_webhooks as sw
from gateway.oc.signing import CLIENT_KEY_HEADER, SIGNATURE_HEADER, oc_signature_matches
from gateway.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    methods: tuple[str, ...] = ()
    failed_method: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Delivery:
    """What verification looks at: nothing here has been parsed."""

    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    source_ip: str
    path_token: str | None


def _networks(values: Sequence[str]) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(v, strict=False) for v in values)
    except ValueError as exc:
        raise ConfigurationError(f"not a network: {exc}") from exc


def _in_any(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


class ReplayCache:
    """Remembers accepted webhook-ids for as long as their timestamps stay acceptable."""

    def __init__(self, ttl_s: float, max_entries: int = 100_000) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def seen(self, webhook_id: str, now: float) -> bool:
        self._expire(now)
        return webhook_id in self._seen

    def remember(self, webhook_id: str, now: float) -> None:
        self._seen[webhook_id] = now + self._ttl_s
        self._seen.move_to_end(webhook_id)
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)

    def _expire(self, now: float) -> None:
        while self._seen:
            oldest, expires = next(iter(self._seen.items()))
            if expires > now:
                return
            del self._seen[oldest]


class Verifier:
    """The verification policy built from settings; `verify` is pure apart from replays."""

    def __init__(self, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._client_key = settings.oc_client_key
        self._oc_secrets = [
            s.get_secret_value()
            for s in (settings.oc_secret_key, *settings.oc_secret_keys_previous)
            if s.get_secret_value()
        ]
        self._check_oc = settings.verify_oc_signature and bool(
            self._client_key and self._oc_secrets
        )
        self._webhook_secrets = [s.get_secret_value() for s in settings.webhook_secrets]
        for secret in self._webhook_secrets:
            sw.secret_key(secret)  # raises on a malformed secret, before serving
        self._tolerance_s = settings.webhook_tolerance_s
        self._path_tokens = [t.get_secret_value().encode() for t in settings.path_tokens]
        self._allowed = _networks(settings.allowed_source_cidrs)
        self._proxies = _networks(settings.trusted_proxies)
        self.replays = ReplayCache(ttl_s=2 * self._tolerance_s)
        self._methods = self._configured()
        self.insecure = settings.insecure_allow_unverified and not self._methods
        # In this order, each configured method once (the cheap ones first).
        checks: list[tuple[str, Callable[[Delivery], str]]] = [
            ("source_ip", self._check_source),
            ("path_token", self._check_path_token),
            ("oc_signature", self._check_oc_signature),
            ("standard_webhooks", self._check_standard_webhooks),
        ]
        self._checks = [(name, check) for name, check in checks if name in self._methods]

    @property
    def methods(self) -> tuple[str, ...]:
        return self._methods

    def _configured(self) -> tuple[str, ...]:
        names = []
        if self._check_oc:
            names.append("oc_signature")
        if self._webhook_secrets:
            names.append("standard_webhooks")
        if self._path_tokens:
            names.append("path_token")
        if self._allowed:
            names.append("source_ip")
        return tuple(names)

    @property
    def requires_path_token(self) -> bool:
        return bool(self._path_tokens)

    def client_address(self, peer: str, forwarded_for: str | None) -> str:
        """The caller's address: X-Forwarded-For is believed only from trusted proxies,
        walking from the nearest hop back to the first untrusted one."""
        if not forwarded_for or not _in_any(peer, self._proxies):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        address = peer
        for hop in reversed(hops):
            address = hop
            if not _in_any(hop, self._proxies):
                break
        return address

    def source_allowed(self, address: str) -> bool:
        return not self._allowed or _in_any(address, self._allowed)

    def verify(self, delivery: Delivery) -> Verdict:
        """Check every configured method against the raw delivery."""
        if not self._methods:
            if self.insecure:
                return Verdict(True, ("insecure",))
            return Verdict(False, (), "none", "no verification configured")
        for name, check in self._checks:
            reason = check(delivery)
            if reason:
                return Verdict(False, (), name, reason)
        return Verdict(True, self._methods)

    def accepted(self, delivery: Delivery) -> None:
        """Remember a durably accepted delivery so a replay of it is refused."""
        webhook_id = delivery.headers.get(sw.ID_HEADER)
        if self._webhook_secrets and webhook_id:
            self.replays.remember(webhook_id, self._clock.time())

    def _check_source(self, delivery: Delivery) -> str:
        return "" if self.source_allowed(delivery.source_ip) else "source address not allowed"

    def _check_path_token(self, delivery: Delivery) -> str:
        offered = (delivery.path_token or "").encode()
        matched = False
        for token in self._path_tokens:
            matched |= hmac.compare_digest(offered, token)
        return "" if matched else "missing or wrong path token"

    def _check_oc_signature(self, delivery: Delivery) -> str:
        client_key = delivery.headers.get(CLIENT_KEY_HEADER.lower(), "")
        signature = delivery.headers.get(SIGNATURE_HEADER.lower(), "")
        if not client_key or not signature:
            return "missing clientKey or vAuthorization"
        if not hmac.compare_digest(client_key.encode(), self._client_key.encode()):
            return "unknown clientKey"
        if not oc_signature_matches(
            signature, delivery.path, delivery.body, self._client_key, self._oc_secrets
        ):
            return "bad vAuthorization signature"
        return ""

    def _check_standard_webhooks(self, delivery: Delivery) -> str:
        webhook_id = delivery.headers.get(sw.ID_HEADER, "")
        timestamp = delivery.headers.get(sw.TIMESTAMP_HEADER, "")
        signature = delivery.headers.get(sw.SIGNATURE_HEADER, "")
        if not webhook_id or not timestamp or not signature:
            return "missing webhook-id, webhook-timestamp or webhook-signature"
        try:
            sent_at = int(timestamp)
        except ValueError:
            return "webhook-timestamp is not an integer"
        now = self._clock.time()
        if abs(now - sent_at) > self._tolerance_s:
            return "webhook-timestamp outside the tolerance"
        if not sw.signature_matches(
            signature, self._webhook_secrets, webhook_id, sent_at, delivery.body
        ):
            return "bad webhook-signature"
        if self.replays.seen(webhook_id, now):
            return "replayed webhook-id"
        return ""


def check_configured(verifier: Verifier) -> None:
    """Fail closed: refuse to start with no verification unless explicitly insecure."""
    if not verifier.methods and not verifier.insecure:
        raise ConfigurationError(
            "no callback verification is configured: set GATEWAY_OC_CLIENT_KEY and "
            "GATEWAY_OC_SECRET_KEY, GATEWAY_WEBHOOK_SECRETS, GATEWAY_PATH_TOKENS or "
            "GATEWAY_ALLOWED_SOURCE_CIDRS (or, for development only, "
            "GATEWAY_INSECURE_ALLOW_UNVERIFIED=true)"
        )

"""Personal-data minimisation: what of a consignee a typed topic may carry (pure).

The policy is per topic and per field, set by `GATEWAY_PII_POLICY`, e.g.
`{"oc.outbound.orders.v1": {"email": "hash", "country_code": "publish", "*": "drop"}}`.
Modes: `drop` (the default for every field of every topic), `mask` (a hint that is not
the value: `j***@example.com`, `******89`, `J***`), `hash` (HMAC-SHA256 with
`GATEWAY_PII_HMAC_KEY`, hex: equal values group together, nobody can read them back),
`publish` (as sent). The raw and quarantine topics keep OC's bytes untouched; restrict
who may read them (helm/README.md has Kafka ACL examples).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Literal

from gateway.errors import ConfigurationError
from schemas.events import Consignee

PiiMode = Literal["drop", "mask", "hash", "publish"]
PII_FIELDS = tuple(Consignee.model_fields)
_DEFAULT: PiiMode = "drop"


def mask(field: str, value: str) -> str:
    """A hint that cannot be turned back into the value."""
    value = value.strip()
    if not value:
        return value
    if field == "email" and "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    if field == "phone":
        digits = [c for c in value if c.isdigit()]
        return "*" * max(0, len(digits) - 2) + "".join(digits[-2:])
    if field == "country_code":
        return value  # two letters identify nobody
    return f"{value[:1]}***"


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 of the normalised value: the same address hashes the same way."""
    normalised = " ".join(value.split()).casefold()
    return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()


class PiiPolicy:
    """Applies the configured per-topic, per-field modes to a consignee."""

    def __init__(self, policy: Mapping[str, Mapping[str, PiiMode]], hmac_key: str) -> None:
        for topic, fields in policy.items():
            unknown = set(fields) - {*PII_FIELDS, "*"}
            if unknown:
                raise ConfigurationError(
                    f"GATEWAY_PII_POLICY for {topic}: unknown fields {sorted(unknown)}; "
                    f"known: {', '.join(PII_FIELDS)} and *"
                )
        uses_hash = any(mode == "hash" for fields in policy.values() for mode in fields.values())
        if uses_hash and not hmac_key:
            raise ConfigurationError("GATEWAY_PII_POLICY hashes fields: set GATEWAY_PII_HMAC_KEY")
        self._policy = policy
        self._key = hmac_key.encode()

    def publishes_any(self, topic: str) -> bool:
        """Whether `topic` carries any consignee field at all (by default, none does)."""
        fields = self._policy.get(topic, {})
        return any(self.mode(topic, f) != "drop" for f in PII_FIELDS) or (
            bool(fields) and any(mode != "drop" for mode in fields.values())
        )

    def mode(self, topic: str, field: str) -> PiiMode:
        fields = self._policy.get(topic, {})
        return fields.get(field, fields.get("*", _DEFAULT))

    def apply(self, topic: str, consignee: Consignee) -> Consignee | None:
        """What `topic` may carry of `consignee`; None when nothing is left."""
        kept: dict[str, str] = {}
        for field in PII_FIELDS:
            value = getattr(consignee, field)
            if not value:
                continue
            mode = self.mode(topic, field)
            if mode == "publish":
                kept[field] = value
            elif mode == "mask":
                kept[field] = mask(field, value)
            elif mode == "hash":
                kept[field] = keyed_hash(self._key, value)
        return Consignee(**kept) if kept else None

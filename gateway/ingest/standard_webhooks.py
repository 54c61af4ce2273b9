"""Standard Webhooks signatures (https://www.standardwebhooks.com), v1 HMAC-SHA256.

Pure functions: the signed content is `{webhook-id}.{webhook-timestamp}.{body}`, the key
is the base64 part of a `whsec_...` secret, and `webhook-signature` holds one or more
space-separated `v1,<base64>` entries (several while a sender rotates its secret).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
_PREFIX = "whsec_"


class InvalidSecret(ValueError):
    """A configured secret is not `whsec_` followed by base64."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret (a bare base64 string is accepted too)."""
    encoded = secret.removeprefix(_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSecret("webhook secret is not base64 after its whsec_ prefix") from exc


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value a sender puts on one delivery."""
    mac = hmac.new(secret_key(secret), digestmod=hashlib.sha256)
    mac.update(f"{webhook_id}.{timestamp}.".encode())
    mac.update(body)
    return "v1," + base64.b64encode(mac.digest()).decode()


def signature_matches(
    header: str, secrets: list[str], webhook_id: str, timestamp: int, body: bytes
) -> bool:
    """Whether any v1 entry of `header` was made with any of `secrets`, in constant time."""
    offered = [
        entry.split(",", 1)[1].encode()
        for entry in header.split()
        if entry.startswith("v1,") and len(entry) > 3
    ]
    matched = False
    for secret in secrets:
        expected = sign(secret, webhook_id, timestamp, body).split(",", 1)[1].encode()
        for candidate in offered:
            matched |= hmac.compare_digest(candidate, expected)
    return matched

"""OC's request signature: the `vAuthorization` header (pure functions, no I/O).

OC's documentation names the header but not its algorithm; the one public client that
calls OC's live API sends md5_hex(path | body | clientKey | secretKey), where path is
the full URL path (including /openapi) and body is the exact bytes sent. The gateway
uses the same rule to sign its API calls and to verify OC's callbacks.
"""

from __future__ import annotations

import hashlib
import hmac

CLIENT_KEY_HEADER = "clientKey"
SIGNATURE_HEADER = "vAuthorization"


def oc_signature(path: str, body: bytes, client_key: str, secret_key: str) -> str:
    """The 32-character lowercase hex signature OC expects for one request."""
    digest = hashlib.md5(usedforsecurity=False)
    digest.update(path.encode())
    digest.update(b"|")
    digest.update(body)
    digest.update(b"|")
    digest.update(client_key.encode())
    digest.update(b"|")
    digest.update(secret_key.encode())
    return digest.hexdigest()


def oc_signature_matches(
    signature: str, path: str, body: bytes, client_key: str, secret_keys: list[str]
) -> bool:
    """Whether `signature` is valid under any of `secret_keys` (rotation), in constant time."""
    candidate = signature.strip().lower().encode()
    matched = False
    for secret in secret_keys:
        expected = oc_signature(path, body, client_key, secret).encode()
        # Check every key so the time taken does not reveal which one matched.
        matched |= hmac.compare_digest(candidate, expected)
    return matched

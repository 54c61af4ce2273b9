"""The callbacks a run sends, as vegeta targets: realistic bodies from the simulator, each
signed on its own with OC's scheme (clientKey + vAuthorization = md5(path|body|key|secret)).

The bodies come from the running simulator (`POST /_sim/callbacks/next`), so the look-ups
the gateway makes while enriching agree with them. A delivery is identified as the
gateway identifies it: no `webhook-id` header is sent (OC sends none), so its delivery id
is the digest of the body; the gateway's answer echoes the body's `messageId`, which is
how an accepted answer is tied back to its callback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bench.services import CLIENT_KEY, SECRET_KEY
from gateway.oc.signing import CLIENT_KEY_HEADER, SIGNATURE_HEADER, oc_signature

_MAX_PER_CALL = 10_000


@dataclass(frozen=True, slots=True)
class Callback:
    message_id: str
    entity_key: str
    body: bytes

    @property
    def delivery_id(self) -> str:
        return "sha256:" + hashlib.sha256(self.body).hexdigest()


def fetch_callbacks(simulator_url: str, count: int, kind: str = "outbound") -> list[Callback]:
    """The next `count` callbacks of the simulator's world (advancing it)."""
    found: list[Callback] = []
    with httpx.Client(base_url=simulator_url, timeout=120.0) as client:
        while len(found) < count:
            take = min(_MAX_PER_CALL, count - len(found))
            response = client.post("/_sim/callbacks/next", params={"count": take, "kind": kind})
            response.raise_for_status()
            found += [
                Callback(c["messageId"], c["entityKey"], c["body"].encode())
                for c in response.json()["callbacks"]
            ]
    return found


def target(url: str, callback: Callback, *, sign: bool = True) -> dict[str, object]:
    headers: dict[str, list[str]] = {"Content-Type": ["application/json"]}
    if sign:
        path = urlsplit(url).path
        signature = oc_signature(path, callback.body, CLIENT_KEY, SECRET_KEY)
        headers[CLIENT_KEY_HEADER] = [CLIENT_KEY]
        headers[SIGNATURE_HEADER] = [signature]
    return {
        "method": "POST",
        "url": url,
        "body": base64.b64encode(callback.body).decode(),
        "header": headers,
    }


def write_targets(
    path: Path, url: str, callbacks: Iterable[Callback], *, sign: bool = True
) -> None:
    """One JSON target per line, in sending order (vegeta reads them lazily)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for callback in callbacks:
            out.write(json.dumps(target(url, callback, sign=sign), separators=(",", ":")))
            out.write("\n")


def payload_bytes(sizes: Sequence[int]) -> dict[str, float]:
    """Body sizes of the callbacks a run sent."""
    return {
        "mean": round(statistics.fmean(sizes), 1),
        "min": min(sizes),
        "max": max(sizes),
    }

"""Verification table: for each method, what is genuine gets in and nothing else does.

Each row is one request against a running app configured with that method. Verification
runs on the raw bytes before any parsing, fails closed, and a refused request stores
nothing.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from gateway.errors import ConfigurationError
from gateway.ingest import standard_webhooks as sw
from gateway.lifespan import Gateway
from gateway.oc.signing import oc_signature
from tests.conftest import SettingsFactory
from tests.helpers import client_from, outbound_callback, read_topic, running_app, running_asgi

BODY = outbound_callback("OCO0000000000001GB", "SHIPPED", message_id="m-verify")
OTHER_BODY = outbound_callback("OCO0000000000002GB", "SHIPPED", message_id="m-other")
SECRET_A = "whsec_" + base64.b64encode(b"a" * 32).decode()
SECRET_B = "whsec_" + base64.b64encode(b"b" * 32).decode()
CLIENT_KEY = "client-key-1"
OC_SECRET = "oc-secret-1"
OC_OLD_SECRET = "oc-secret-0"
PATH = "/webhooks/oc/outbound"


@dataclass(frozen=True)
class Case:
    name: str
    expected: int
    headers: Callable[[], dict[str, str]] = dict
    path: str = PATH
    body: bytes = BODY
    send_twice: bool = False
    source: str = "127.0.0.1"
    extra: dict[str, Any] = field(default_factory=dict)


def oc_headers(secret: str = OC_SECRET, body: bytes = BODY, path: str = PATH) -> dict[str, str]:
    return {
        "clientKey": CLIENT_KEY,
        "vAuthorization": oc_signature(path, body, CLIENT_KEY, secret),
    }


def sw_headers(
    secret: str = SECRET_A, *, age_s: int = 0, body: bytes = BODY, webhook_id: str = "msg_1"
) -> dict[str, str]:
    stamp = int(time.time()) - age_s
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sw.sign(secret, webhook_id, stamp, body),
    }


OC_CASES = [
    Case("oc: correctly signed", 200, lambda: oc_headers()),
    Case("oc: signed with the previous secret (rotation)", 200, lambda: oc_headers(OC_OLD_SECRET)),
    Case("oc: no signature", 401),
    Case("oc: forged with an unknown secret", 401, lambda: oc_headers("guessed")),
    Case("oc: signature of another body", 401, lambda: oc_headers(body=OTHER_BODY)),
    Case("oc: signature of another path", 401, lambda: oc_headers(path="/other")),
    Case(
        "oc: unknown client key",
        401,
        lambda: {**oc_headers(), "clientKey": "someone-else"},
    ),
    Case(
        "oc: uppercase hex signature still matches",
        200,
        lambda: {**oc_headers(), "vAuthorization": oc_headers()["vAuthorization"].upper()},
    ),
]
SW_CASES = [
    Case("sw: correctly signed", 200, lambda: sw_headers()),
    Case("sw: signed with the second active secret", 200, lambda: sw_headers(SECRET_B)),
    Case("sw: no headers", 401),
    Case(
        "sw: forged",
        401,
        lambda: sw_headers("whsec_" + base64.b64encode(b"x" * 32).decode()),
    ),
    Case("sw: expired timestamp", 401, lambda: sw_headers(age_s=3600)),
    Case("sw: timestamp from the future", 401, lambda: sw_headers(age_s=-3600)),
    Case("sw: signature of another body", 401, lambda: sw_headers(body=OTHER_BODY)),
    Case(
        "sw: replayed webhook-id", 401, lambda: sw_headers(webhook_id="msg_replay"), send_twice=True
    ),
    Case(
        "sw: several signatures, one valid",
        200,
        lambda: {
            **sw_headers(),
            "webhook-signature": "v1,AAAA " + sw_headers()["webhook-signature"],
        },
    ),
    Case(
        "sw: non-numeric timestamp",
        401,
        lambda: {**sw_headers(), "webhook-timestamp": "yesterday"},
    ),
]
TOKEN_CASES = [
    Case("token: right token", 200, path="/webhooks/oc/s3cret-token/outbound"),
    Case("token: second active token", 200, path="/webhooks/oc/next-token/outbound"),
    Case("token: wrong token", 401, path="/webhooks/oc/guessed/outbound"),
    Case("token: no token", 401, path=PATH),
]
IP_CASES = [
    Case("ip: allowed network", 200, source="10.1.2.3"),
    Case("ip: outside the allow-list", 403, source="192.0.2.7"),
    Case(
        "ip: X-Forwarded-For from an untrusted peer is ignored",
        403,
        lambda: {"x-forwarded-for": "10.1.2.3"},
        source="192.0.2.7",
    ),
    Case(
        "ip: X-Forwarded-For from a trusted proxy is honoured",
        200,
        lambda: {"x-forwarded-for": "10.9.9.9"},
        source="172.16.0.5",
    ),
    Case(
        "ip: a spoofed first hop behind the trusted proxy does not help",
        403,
        lambda: {"x-forwarded-for": "10.9.9.9, 192.0.2.7"},
        source="172.16.0.5",
    ),
]

METHODS: dict[str, dict[str, Any]] = {
    "oc": {
        "oc_client_key": CLIENT_KEY,
        "oc_secret_key": OC_SECRET,
        "oc_secret_keys_previous": [OC_OLD_SECRET],
        "path_tokens": [],
    },
    "sw": {"webhook_secrets": [SECRET_A, SECRET_B], "path_tokens": []},
    "token": {"path_tokens": ["s3cret-token", "next-token"]},
    "ip": {
        "allowed_source_cidrs": ["10.0.0.0/8"],
        "trusted_proxies": ["172.16.0.0/12"],
        "path_tokens": [],
    },
}
CASES = [("oc", c) for c in OC_CASES]
CASES += [("sw", c) for c in SW_CASES]
CASES += [("token", c) for c in TOKEN_CASES]
CASES += [("ip", c) for c in IP_CASES]


@pytest.mark.parametrize(("method", "case"), CASES, ids=[c.name for _, c in CASES])
async def test_verification(make_settings: SettingsFactory, method: str, case: Case) -> None:
    settings = make_settings(**METHODS[method])
    async with running_asgi(settings) as (app, gateway), client_from(app, case.source) as client:
        headers = {"content-type": "application/json", **case.headers()}
        statuses = []
        for _ in range(2 if case.send_twice else 1):
            response = await client.post(case.path, content=case.body, headers=headers)
            statuses.append(response.status_code)
            if response.status_code != 200:
                assert set(response.json()) == {"error", "message"}
                assert OC_SECRET not in response.text
                assert "Traceback" not in response.text
        stored = await read_topic(gateway, settings.topic_raw)
    assert statuses[-1] == case.expected, statuses
    assert len(stored) == statuses.count(200)


async def test_combined_methods_must_all_pass(make_settings: SettingsFactory) -> None:
    settings = make_settings(
        oc_client_key=CLIENT_KEY, oc_secret_key=OC_SECRET, path_tokens=["t0ken"]
    )
    async with running_app(settings) as (client, _):
        only_token = await client.post(
            "/webhooks/oc/t0ken/outbound",
            content=BODY,
            headers={"content-type": "application/json"},
        )
        both = await client.post(
            "/webhooks/oc/t0ken/outbound",
            content=BODY,
            headers={
                "content-type": "application/json",
                **oc_headers(path="/webhooks/oc/t0ken/outbound"),
            },
        )
    assert only_token.status_code == 401
    assert both.status_code == 200


def test_the_gateway_refuses_to_start_without_verification(
    make_settings: SettingsFactory,
) -> None:
    from gateway.ingest.verify import check_configured

    gateway = Gateway(make_settings(path_tokens=[]))
    with pytest.raises(ConfigurationError, match="no callback verification"):
        check_configured(gateway.verifier)


async def test_insecure_mode_accepts_and_says_so(make_settings: SettingsFactory) -> None:
    settings = make_settings(path_tokens=[], insecure_allow_unverified=True)
    async with running_app(settings) as (client, gateway):
        response = await client.post(
            PATH, content=BODY, headers={"content-type": "application/json"}
        )
        metrics = await client.get("/metrics")
    assert response.status_code == 200
    assert gateway.verifier.insecure
    assert "gateway_insecure_mode 1.0" in metrics.text


def test_a_malformed_webhook_secret_is_a_configuration_error(
    make_settings: SettingsFactory,
) -> None:
    with pytest.raises(sw.InvalidSecret):
        Gateway(make_settings(webhook_secrets=["whsec_not base64!"]))

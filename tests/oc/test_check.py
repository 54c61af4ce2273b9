"""`gateway oc check` against the simulator: one call per API family, OK or OC's own
error; a failing family, a bad key pair and a refused token each show as such."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.commands.oc_check import render, rotation_note, token_source
from gateway.oc.check import CheckResult, check_account, oc_error_text
from gateway.oc.tokens import StoredToken, TokenStore, fingerprint
from gateway.settings import Settings
from schemas.oc_api import parse_classic_response, parse_return2_response
from tests.simulation import Sim

from .conftest import ClientFactory
from .test_sim_auth import grant_refresh_token

FAMILIES = ["order query", "stock snapshot", "return orders", "return stock"]


async def _check(oc_client: ClientFactory, **settings: Any) -> list[CheckResult]:
    async with oc_client(oc_max_retries=0, **settings) as client:
        return await check_account(client.queries, datetime.now(UTC))


async def test_a_working_account_answers_every_family(sim: Sim, oc_client: ClientFactory) -> None:
    results = await _check(oc_client)
    assert [r.family for r in results] == ["token refresh", *FAMILIES]
    assert all(r.ok for r in results), results
    assert results[1].call == "POST /openapi/3pp/outbound/v2/query"
    assert results[3].call == "GET /openapi/3pp/returns/v1/query/orders"
    assert await sim.count("oauth_token", "ok_refresh_token") == 1  # one refresh for all
    for endpoint in ("outbound_query_v2", "stock_snapshot_v2", "return_orders", "return_stock"):
        assert await sim.count(endpoint, "ok") == 1


@pytest.mark.parametrize(
    ("endpoint", "family", "faults", "detail"),
    [
        (
            "return_orders",
            "return orders",
            {"success_false_rate": 1.0},
            "5A0001 System busy, please try again later",
        ),
        ("stock_snapshot_v2", "stock snapshot", {"error_rate": 1.0}, "answered HTTP 500"),
        ("outbound_query_v2", "order query", {"rate_limit_rate": 1.0}, "answered HTTP 429"),
    ],
)
async def test_a_failing_family_is_reported_alone(
    sim: Sim,
    oc_client: ClientFactory,
    endpoint: str,
    family: str,
    faults: dict[str, Any],
    detail: str,
) -> None:
    await sim.faults(endpoints=[endpoint], **faults)
    results = {r.family: r for r in await _check(oc_client)}
    assert results[family].ok is False
    assert detail in results[family].detail
    assert [f for f in FAMILIES if results[f].ok] == [f for f in FAMILIES if f != family]
    assert await sim.count(endpoint) == 1  # no retries: what OC answers now


async def test_a_wrong_secret_key_fails_every_signed_call(
    sim: Sim, oc_client: ClientFactory
) -> None:
    results = await _check(oc_client, oc_secret_key="not-the-secret")
    assert results[0].ok  # the token call is not signed (OC takes no secret there)
    for result in results[1:]:
        assert result.ok is False
        assert result.detail == "403 vAuthorization signature verification failed"


async def test_a_wrong_client_key_fails_the_token_refresh_and_nothing_else_is_tried(
    sim: Sim, oc_client: ClientFactory
) -> None:
    results = await _check(oc_client, oc_client_key="someone-else")
    assert results[0].family == "token refresh"
    assert results[0].ok is False
    assert "HTTP 401 invalid_client: unknown client_id" in results[0].detail
    assert [r.ok for r in results[1:]] == [None] * 4
    assert await sim.count("oauth_token", "invalid_client") == 1
    assert await sim.count("outbound_query_v2") == 0


async def test_the_check_tells_whether_oc_rotated_the_refresh_token(
    sim: Sim, oc_client: ClientFactory, make_settings: Any, tmp_path: Path
) -> None:
    await sim.faults(rotate_refresh_tokens=True)
    granted = await grant_refresh_token(sim)
    store = TokenStore(tmp_path / "oc-token.json")
    store.save_grant(granted)
    start = store.starting_point("")
    results = await _check(oc_client, oc_refresh_token="", oc_token_store=store.path)
    assert all(r.ok for r in results)
    settings: Settings = make_settings(oc_token_store=store.path)
    assert "OC rotated the refresh token" in rotation_note(settings, start, store.load())
    assert "kept the refresh token" in rotation_note(settings, start, start)
    assert token_source(settings, start) == f"the token store {store.path}"
    with_env = make_settings(oc_refresh_token=granted)
    assert token_source(with_env, StoredToken(granted, fingerprint(granted))) == (
        "GATEWAY_OC_REFRESH_TOKEN"
    )


def test_the_report_counts_failed_and_untried_families() -> None:
    def result(family: str, ok: bool | None) -> CheckResult:
        return CheckResult(family, "POST /x", ok, "detail")

    good = [result("token refresh", True), *(result(f, True) for f in FAMILIES)]
    assert render(good)[-1] == "All 4 API families answered."
    assert render(good)[0].split()[:4] == ["token", "refresh", "OK", "POST"]
    mixed = [result("token refresh", True), result("order query", False)] + [
        result(f, True) for f in FAMILIES[1:]
    ]
    assert render(mixed)[-1] == "1 of 4 API families failed."
    assert " FAIL " in render(mixed)[1]
    refused = [result("token refresh", False), *(result(f, None) for f in FAMILIES)]
    assert render(refused)[-1] == "4 of 4 API families failed."
    assert " SKIP " in render(refused)[2]


@pytest.mark.parametrize(
    ("body", "return2", "expected"),
    [
        (
            b'{"code":3,"success":false,"message":"Query fail","errors":'
            b'[{"code":"3A0529","message":"Query fail. Because x doesnt exists"}]}',
            False,
            "3A0529 Query fail. Because x doesnt exists",
        ),
        (b'{"code":3,"success":false,"message":"Query fail","errors":[]}', False, "3 Query fail"),
        (b'{"success":false,"errors":[{"message":"no code"}]}', False, "no code"),
        (
            b'{"success":false,"hasBusinessException":true,"errorCode":"RT001",'
            b'"errorMsg":"no such return","message":"fail"}',
            True,
            "RT001 no such return",
        ),
        (b'{"success":false,"message":"only a message"}', True, "only a message"),
        (b'{"success":false}', True, None),
    ],
)
def test_ocs_own_error_code_and_message_are_read_from_either_envelope(
    body: bytes, return2: bool, expected: str | None
) -> None:
    envelope = parse_return2_response(body) if return2 else parse_classic_response(body)
    assert oc_error_text(envelope) == expected

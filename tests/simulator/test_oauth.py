"""OC's OAuth against the simulator over a real socket: authorize, exchange, refresh, expiry."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from schemas.oc_api import (
    OAUTH_AUTHORIZE_PATH,
    OAUTH_TOKEN_PATH,
    AuthorizeRequest,
    TokenRequest,
    parse_outbound_query_response,
    parse_token_response,
)
from tests.waiting import wait_for

from .conftest import CLIENT_KEY, OcClient, RunningSimulator

REDIRECT = "https://erp.example/oc/callback?tenant=7"


async def _authorize(oc: OcClient, state: str = "acct-42") -> str:
    query = AuthorizeRequest(client_id=CLIENT_KEY, redirect_uri=REDIRECT, state=state)
    response = await oc.http.get(oc.base + OAUTH_AUTHORIZE_PATH, params=query.to_query())
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT.split("?")[0]
    params = parse_qs(location.query)
    assert params["state"] == [state]
    assert params["tenant"] == ["7"]
    return params["code"][0]


async def _token(oc: OcClient, request: TokenRequest) -> httpx.Response:
    return await oc.http.post(oc.base + OAUTH_TOKEN_PATH, params=request.to_query())


async def _query_order(oc: OcClient, token: str) -> httpx.Response:
    return await oc.call("POST", "/3pp/outbound/v2/query", _ANY_ORDER, token=token)


_ANY_ORDER = {"data": {"orderNumberList": [{"orderNumber": "OCO-none"}]}}


async def test_the_authorization_code_flow_issues_working_tokens(oc: OcClient) -> None:
    code = await _authorize(oc)
    response = await _token(oc, TokenRequest.authorization_code(CLIENT_KEY, code, REDIRECT))
    assert response.status_code == 200
    tokens = parse_token_response(response.content)
    assert not tokens.is_failure()
    assert tokens.expires_in == 3600
    assert tokens.token_type == "bearer"
    assert tokens.access_token is not None
    answer = await _query_order(oc, tokens.access_token)
    assert not parse_outbound_query_response(answer.content).is_failure()
    assert tokens.refresh_token is not None
    refreshed = await _token(oc, TokenRequest.refresh(CLIENT_KEY, tokens.refresh_token))
    assert not parse_token_response(refreshed.content).is_failure()


async def test_a_code_works_once_and_only_with_its_redirect_uri(oc: OcClient) -> None:
    code = await _authorize(oc)
    wrong = await _token(oc, TokenRequest.authorization_code(CLIENT_KEY, code, "https://evil"))
    assert wrong.status_code == 400
    assert parse_token_response(wrong.content).error == "invalid_grant"
    assert "redirect_uri does not match" in (
        parse_token_response(wrong.content).error_description or ""
    )
    code = await _authorize(oc)
    first = await _token(oc, TokenRequest.authorization_code(CLIENT_KEY, code, REDIRECT))
    assert first.status_code == 200
    again = await _token(oc, TokenRequest.authorization_code(CLIENT_KEY, code, REDIRECT))
    assert again.status_code == 400
    assert parse_token_response(again.content).is_auth_failure()
    assert parse_token_response(again.content).error_description == (
        "authorization code was already used"
    )
    unknown = await _token(oc, TokenRequest.authorization_code(CLIENT_KEY, "made-up", REDIRECT))
    assert (
        parse_token_response(unknown.content).error_description == "authorization code is unknown"
    )


async def test_codes_can_be_expired_on_demand(oc: OcClient) -> None:
    code = await _authorize(oc)
    expired = await oc.http.post(oc.base + "/_sim/codes/expire")
    assert expired.json() == {"expired": 1}
    late = await _token(oc, TokenRequest.authorization_code(CLIENT_KEY, code, REDIRECT))
    assert late.status_code == 400
    answer = parse_token_response(late.content)
    assert (answer.error, answer.error_description) == (
        "invalid_grant",
        "authorization code has expired",
    )
    fresh = await _authorize(oc)  # codes issued after still work
    ok = await _token(oc, TokenRequest.authorization_code(CLIENT_KEY, fresh, REDIRECT))
    assert ok.status_code == 200


async def test_bad_token_requests_are_refused_like_oauth(oc: OcClient) -> None:
    unknown_client = await _token(oc, TokenRequest.refresh("someone-else", "sim-refresh-token"))
    assert unknown_client.status_code == 401
    assert parse_token_response(unknown_client.content).error == "invalid_client"
    bad_refresh = await _token(oc, TokenRequest.refresh(CLIENT_KEY, "not-a-token"))
    assert bad_refresh.status_code == 400
    assert parse_token_response(bad_refresh.content).error == "invalid_grant"
    odd_grant = await oc.http.post(
        oc.base + OAUTH_TOKEN_PATH, params={"client_id": CLIENT_KEY, "grant_type": "password"}
    )
    assert parse_token_response(odd_grant.content).error == "unsupported_grant_type"
    in_body = await oc.http.post(
        oc.base + OAUTH_TOKEN_PATH,
        data={"client_id": CLIENT_KEY, "grant_type": "refresh_token", "refresh_token": "x"},
    )
    assert parse_token_response(in_body.content).error == "invalid_request"
    no_state = await oc.http.get(
        oc.base + OAUTH_AUTHORIZE_PATH,
        params={"response_type": "code", "client_id": CLIENT_KEY, "redirect_uri": REDIRECT},
    )
    assert no_state.status_code == 400


async def test_tokens_expire_and_refresh_brings_them_back(
    oc: OcClient, simulator: RunningSimulator
) -> None:
    await oc.http.post(oc.base + "/_sim/faults", json={"token_ttl_s": 1.5})
    token = await oc.fetch_token()
    assert (await _token_status(oc, token)) == "ok"

    async def expired() -> bool:
        return await _token_status(oc, token) == "auth"

    await wait_for(expired)
    answer = parse_outbound_query_response((await _query_order(oc, token)).content)
    assert answer.is_auth_failure()
    fresh = await oc.fetch_token()
    assert fresh != token
    assert (await _token_status(oc, fresh)) == "ok"
    assert simulator.sim.stats.count("outbound_query_v2", "auth_failure") >= 1


async def test_expired_tokens_can_be_answered_with_http_401(oc: OcClient) -> None:
    await oc.http.post(oc.base + "/_sim/faults", json={"token_failure": "http_401"})
    await oc.http.post(oc.base + "/_sim/tokens/expire")
    response = await _query_order(oc, oc.token or "")
    assert response.status_code == 401
    assert parse_outbound_query_response(response.content).is_auth_failure()
    await oc.http.post(oc.base + "/_sim/faults", json={"token_failure": "http_200"})
    response = await _query_order(oc, oc.token or "")
    assert response.status_code == 200
    assert parse_outbound_query_response(response.content).is_auth_failure()


async def test_refresh_tokens_rotate_when_asked(oc: OcClient) -> None:
    await oc.http.post(oc.base + "/_sim/faults", json={"rotate_refresh_tokens": True})
    code = await _authorize(oc)
    first = parse_token_response(
        (await _token(oc, TokenRequest.authorization_code(CLIENT_KEY, code, REDIRECT))).content
    )
    assert first.refresh_token is not None
    second = parse_token_response(
        (await _token(oc, TokenRequest.refresh(CLIENT_KEY, first.refresh_token))).content
    )
    assert second.refresh_token not in (None, first.refresh_token)
    reused = await _token(oc, TokenRequest.refresh(CLIENT_KEY, first.refresh_token))
    assert parse_token_response(reused.content).error == "invalid_grant"
    bootstrap = parse_token_response(
        (await _token(oc, TokenRequest.refresh(CLIENT_KEY, "sim-refresh-token"))).content
    )
    assert bootstrap.refresh_token == "sim-refresh-token"


async def test_without_rotation_the_refresh_token_is_kept(oc: OcClient) -> None:
    code = await _authorize(oc)
    first = parse_token_response(
        (await _token(oc, TokenRequest.authorization_code(CLIENT_KEY, code, REDIRECT))).content
    )
    assert first.refresh_token is not None
    for _ in range(2):
        again = parse_token_response(
            (await _token(oc, TokenRequest.refresh(CLIENT_KEY, first.refresh_token))).content
        )
        assert again.refresh_token == first.refresh_token
        assert again.access_token != first.access_token


async def _token_status(oc: OcClient, token: str) -> str:
    answer = parse_outbound_query_response((await _query_order(oc, token)).content)
    if answer.is_auth_failure():
        return "auth"
    return "failure" if answer.is_failure() else "ok"

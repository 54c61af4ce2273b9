"""One `gateway oc login` attempt against the simulator's OAuth over real sockets.

The test plays the browser: it opens the authorize URL at the simulator, which redirects
it to the login's loopback listener (or, for a redirect URI elsewhere, the test pastes
the address it was sent to). Wrong states, used and expired codes, OC's errors and
timeouts end the login with a `LoginFailed` that says so, and the browser is told too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.errors import LoginFailed
from gateway.oc.login import LoginSession, exchange_code, read_token_answer
from gateway.oc.tokens import TokenStore
from schemas.oc_api import TokenRequest
from tests.simulation import Sim

from .conftest import CLIENT_KEY, ClientFactory

WAIT_S = 30.0
ELSEWHERE = "https://erp.example/oc/callback"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=WAIT_S) as client:
        yield client


async def authorize(browser: httpx.AsyncClient, url: str) -> httpx.URL:
    """The browser at OC: open the authorize URL; OC answers with the redirect."""
    response = await browser.get(url)
    assert response.status_code == 302, response.text
    return httpx.URL(response.headers["location"])


def unexpected(text: str) -> None:
    pytest.fail(f"the login reported a bad paste: {text}")


async def test_the_browser_round_trip_gives_a_grant_the_gateway_can_use(
    sim: Sim, http: httpx.AsyncClient, oc_client: ClientFactory, tmp_path: Path
) -> None:
    async with LoginSession.open(http, sim.url, CLIENT_KEY) as session:
        assert session.listening
        assert session.redirect_uri.startswith("http://127.0.0.1:")
        location = await authorize(http, session.authorize_url)
        assert str(location).startswith(session.redirect_uri + "?")
        landed = asyncio.create_task(http.get(location))
        grant = await session.exchange(await session.wait_for_code(WAIT_S, unexpected))
        page = await landed
    assert page.status_code == 200
    assert "Signed in to OC" in page.text
    assert grant.refresh_token not in repr(grant)
    assert await sim.count("oauth_token", "ok_authorization_code") == 1
    # The gateway's client starts from the stored grant, with no refresh token configured.
    store = TokenStore(tmp_path / "oc-token.json")
    store.save_grant(grant.refresh_token)
    async with oc_client(oc_refresh_token="", oc_token_store=store.path) as client:
        assert await client.get_order("OCO-NO-SUCH-ORDER") is None
    assert await sim.count("oauth_token", "ok_refresh_token") == 1
    assert await sim.count("outbound_query_v2", "ok") == 1


async def test_a_redirect_with_another_state_is_refused_before_any_exchange(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    async with LoginSession.open(http, sim.url, CLIENT_KEY) as session:
        location = await authorize(http, session.authorize_url)
        forged = location.copy_set_param("state", "a-state-from-another-login")
        landed = asyncio.create_task(http.get(forged))
        with pytest.raises(LoginFailed, match="state is not this login's"):
            await session.wait_for_code(WAIT_S, unexpected)
        page = await landed
    assert page.status_code == 400
    assert "nothing was exchanged" in page.text
    assert await sim.count("oauth_token") == 0


async def _refused_exchange(
    http: httpx.AsyncClient, session: LoginSession, location: httpx.URL
) -> tuple[str, httpx.Response]:
    landed = asyncio.create_task(http.get(location))
    code = await session.wait_for_code(WAIT_S, unexpected)
    with pytest.raises(LoginFailed) as failed:
        await session.exchange(code)
    page = await landed
    assert page.status_code == 502
    assert code not in str(failed.value)
    return str(failed.value), page


async def test_a_code_used_before_is_refused_with_ocs_reason(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    async with LoginSession.open(http, sim.url, CLIENT_KEY) as session:
        location = await authorize(http, session.authorize_url)
        stolen = TokenRequest.authorization_code(
            CLIENT_KEY, location.params["code"], session.redirect_uri
        )
        first = await http.post(sim.url + "/oauth/token", params=stolen.to_query())
        assert first.status_code == 200
        message, page = await _refused_exchange(http, session, location)
    assert "OC refused the code (HTTP 400): invalid_grant: authorization code was already used" in (
        message
    )
    assert "run `gateway oc login` again" in message
    assert "already used" in page.text


async def test_an_expired_code_is_refused_with_ocs_reason(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    async with LoginSession.open(http, sim.url, CLIENT_KEY) as session:
        location = await authorize(http, session.authorize_url)
        (await sim.control.post("/_sim/codes/expire")).raise_for_status()
        message, _ = await _refused_exchange(http, session, location)
    assert "invalid_grant: authorization code has expired" in message
    assert await sim.count("oauth_token", "invalid_grant") == 1


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        (
            {"success_false_rate": 1.0},
            "OC refused the code (HTTP 200): server_error: System busy, please try again later",
        ),
        ({"error_rate": 1.0}, "OC's token endpoint answered HTTP 500"),
        ({"down": True}, "OC's token endpoint answered HTTP 503"),
    ],
)
async def test_an_error_from_ocs_token_endpoint_is_shown(
    sim: Sim, http: httpx.AsyncClient, faults: dict[str, Any], expected: str
) -> None:
    async with LoginSession.open(http, sim.url, CLIENT_KEY) as session:
        location = await authorize(http, session.authorize_url)
        await sim.faults(endpoints=["oauth_token"], **faults)
        message, page = await _refused_exchange(http, session, location)
    assert expected in message
    assert "Login failed" in page.text


async def test_the_redirect_uri_must_be_the_one_the_code_was_issued_for(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    async with LoginSession.open(http, sim.url, CLIENT_KEY, ELSEWHERE) as session:
        location = await authorize(http, session.authorize_url)
    with pytest.raises(LoginFailed, match="redirect_uri does not match"):
        await exchange_code(http, sim.url, CLIENT_KEY, location.params["code"], ELSEWHERE + "/x")


async def test_no_redirect_within_the_timeout_ends_the_login(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    async with LoginSession.open(http, sim.url, CLIENT_KEY) as session:
        with pytest.raises(LoginFailed, match=r"no redirect from OC within 0\.2 s"):
            await session.wait_for_code(0.2, unexpected)
    assert await sim.count("oauth_token") == 0


async def test_a_pasted_redirect_address_completes_a_login_elsewhere(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    async with LoginSession.open(http, sim.url, CLIENT_KEY, ELSEWHERE) as session:
        assert not session.listening
        location = await authorize(http, session.authorize_url)
        assert str(location).startswith(ELSEWHERE + "?")
        told: list[str] = []
        session.paste("")
        session.paste(location.params["code"])  # the bare code: not enough, no state
        session.paste(f"  {location}  ")
        grant = await session.exchange(await session.wait_for_code(WAIT_S, told.append))
    assert len(told) == 1
    assert "paste the whole address" in told[0]
    assert grant.refresh_token
    assert await sim.count("oauth_token", "ok_authorization_code") == 1


async def test_with_nothing_to_wait_on_the_login_says_so_at_once(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    async with LoginSession.open(http, sim.url, CLIENT_KEY, ELSEWHERE) as session:
        with pytest.raises(LoginFailed, match="--code"):
            await session.wait_for_code(WAIT_S, unexpected, pasting=False)


async def test_the_listener_answers_other_requests_and_keeps_waiting(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    told: list[str] = []
    async with LoginSession.open(http, sim.url, CLIENT_KEY) as session:
        base = session.redirect_uri.removesuffix("/oauth/callback")
        assert (await http.get(base + "/favicon.ico")).status_code == 404
        assert (await http.post(session.redirect_uri)).status_code == 405
        waiting = asyncio.create_task(session.wait_for_code(WAIT_S, told.append))
        stray = await http.get(session.redirect_uri)  # answered once the login has read it
        assert stray.status_code == 400
        assert "Not OC's redirect" in stray.text
        location = await authorize(http, session.authorize_url)
        landed = asyncio.create_task(http.get(location))
        await session.exchange(await waiting)
        assert (await landed).status_code == 200
    assert len(told) == 1


async def test_a_browser_left_waiting_is_told_the_login_ended(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    async with LoginSession.open(http, sim.url, CLIENT_KEY) as session:
        location = await authorize(http, session.authorize_url)
        landed = asyncio.create_task(http.get(location))
        # Once the arrival is read the session owns it; leave without answering.
        await session.wait_for_code(WAIT_S, unexpected)
    page = await landed
    assert page.status_code == 400
    assert "This login has ended" in page.text


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b"<html>sign in</html>", "HTTP 200 with something that is not a token answer"),
        (502, b"Bad Gateway", "HTTP 502: OC is unavailable or busy"),
        (400, b'{"error":"invalid_request"}', "OC refused the code (HTTP 400): invalid_request."),
        (
            200,
            b'{"success":false,"code":401,"message":"code expired"}',
            "no access token: code expired",
        ),
        (200, b'{"access_token":"at","expires_in":3600}', "has no refresh token"),
    ],
)
def test_each_unusable_token_answer_says_what_is_wrong(
    status: int, body: bytes, expected: str
) -> None:
    with pytest.raises(LoginFailed) as failed:
        read_token_answer(status, body)
    assert expected in str(failed.value)
    assert "run `gateway oc login` again" not in str(failed.value)  # only for invalid_grant


def test_a_token_answer_inside_ocs_envelope_is_read() -> None:
    body = b'{"code":0,"data":{"access_token":"at","refresh_token":"rt","expires_in":3600}}'
    grant = read_token_answer(200, body)
    assert (grant.access_token, grant.refresh_token, grant.expires_in) == ("at", "rt", 3600)


async def test_a_loopback_redirect_uri_must_name_its_port(http: httpx.AsyncClient) -> None:
    with pytest.raises(LoginFailed, match="port 0"):
        async with LoginSession.open(http, "http://oc", CLIENT_KEY, "http://127.0.0.1:0/cb"):
            pass

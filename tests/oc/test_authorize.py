"""The browser half of `gateway oc login`, pure: state, authorize URL, redirect, loopback."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.oc.authorize import (
    Code,
    Loopback,
    Refusal,
    authorize_url,
    default_redirect_uri,
    loopback,
    new_state,
    read_redirect,
)

STATE = "s-123_abc"
CALLBACK = "http://127.0.0.1:5000/oauth/callback"


def test_states_are_fresh_and_url_safe() -> None:
    states = {new_state() for _ in range(100)}
    assert len(states) == 100
    assert all(len(s) >= 32 and s.replace("-", "").replace("_", "").isalnum() for s in states)


def test_the_authorize_url_carries_ocs_four_parameters_on_the_oauth_host() -> None:
    url = authorize_url("https://openapi-stage-hk.orangeconnex.com/", "client-1", CALLBACK, STATE)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "openapi-stage-hk.orangeconnex.com",
        "/oauth/authorize",
    )
    assert parse_qs(parts.query) == {
        "response_type": ["code"],
        "client_id": ["client-1"],
        "redirect_uri": [CALLBACK],
        "state": [STATE],
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{CALLBACK}?code=c-1&state={STATE}", Code("c-1")),
        (f"  {CALLBACK}?state={STATE}&code=c%2F1&extra=x \n", Code("c/1")),
        (f"/oauth/callback?code=c-1&state={STATE}", Code("c-1")),
        (f"?code=c-1&state={STATE}", Code("c-1")),
        (f"code=c-1&state={STATE}", Code("c-1")),
        (f"{CALLBACK}?code=c-1&state=other", "state_mismatch"),
        (f"{CALLBACK}?code=c-1&state={STATE}x", "state_mismatch"),
        (f"{CALLBACK}?code=c-1", "state_mismatch"),
        (f"{CALLBACK}?code=c-1&state=", "state_mismatch"),
        (f"{CALLBACK}?error=access_denied&state={STATE}", "oauth_error"),
        (f"{CALLBACK}?error=access_denied&error_description=user+said+no", "oauth_error"),
        (f"{CALLBACK}?state={STATE}", "oauth_error"),
        (f"{CALLBACK}?state={STATE}&code=", "oauth_error"),
        (CALLBACK, "not_a_redirect"),
        ("c-1", "not_a_redirect"),
        ("hello there", "not_a_redirect"),
    ],
)
def test_a_redirect_gives_a_code_only_with_this_logins_state(
    text: str, expected: Code | str
) -> None:
    found = read_redirect(text, STATE)
    if isinstance(expected, Code):
        assert found == expected
    else:
        assert isinstance(found, Refusal)
        assert found.kind == expected
        assert found.final is (expected != "not_a_redirect")
        assert "c-1" not in found.detail  # a refusal never repeats the code


def test_ocs_refusal_is_shown_with_its_description() -> None:
    found = read_redirect(f"{CALLBACK}?error=access_denied&error_description=user+said+no", STATE)
    assert isinstance(found, Refusal)
    assert found.detail == "OC refused the authorization: access_denied: user said no"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (CALLBACK, Loopback("127.0.0.1", 5000, "/oauth/callback")),
        ("http://localhost:8765/cb", Loopback("localhost", 8765, "/cb")),
        ("http://[::1]:8765/cb", Loopback("::1", 8765, "/cb")),
        ("http://127.0.0.2:80", Loopback("127.0.0.2", 80, "/")),
        ("http://127.0.0.1/oauth/callback", Loopback("127.0.0.1", 80, "/oauth/callback")),
        ("https://127.0.0.1:5000/cb", None),
        ("http://erp.example/cb", None),
        ("http://10.0.0.5:5000/cb", None),
        ("http://127.0.0.1:99999/cb", None),
        ("not a uri", None),
    ],
)
def test_only_plain_http_loopback_redirect_uris_are_listened_on(
    uri: str, expected: Loopback | None
) -> None:
    assert loopback(uri) == expected


def test_the_default_redirect_uri_is_loopback() -> None:
    assert default_redirect_uri(4321) == "http://127.0.0.1:4321/oauth/callback"
    assert loopback(default_redirect_uri(4321)) == Loopback("127.0.0.1", 4321, "/oauth/callback")

"""Reading OC's answers: statuses, both envelopes, Retry-After, auth failures."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from gateway.errors import OcAuthError, OcError, OcRejected, OcTransient
from gateway.oc.redaction import RedactSecretParams
from gateway.oc.responses import (
    PARSE_EXTENSION,
    OcLimitExceeded,
    OcThrottled,
    is_auth_failure,
    read_answer,
    retry_after_s,
    transport_error,
)
from schemas.oc_api import parse_outbound_query_response, parse_return_stock_response

ORDERS = httpx.Request("POST", "http://oc/openapi/3pp/outbound/v2/query")
RETURN_STOCK = httpx.Request("POST", "http://oc/openapi/3pp/returns/v1/query/stock")


def answer(status: int, body: Any = None, **headers: str) -> httpx.Response:
    content = json.dumps(body).encode() if body is not None else b""
    return httpx.Response(status, content=content, headers=headers)


def classic_failure(message: str) -> dict[str, Any]:
    return {"code": 3, "success": False, "errors": [{"code": "3A0529", "message": message}]}


def return2_failure(code: str, message: str) -> dict[str, Any]:
    return {"requestId": "r", "success": False, "errorCode": code, "errorMsg": message}


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (answer(401), OcAuthError),
        (answer(429, {}, **{"Retry-After": "3"}), OcThrottled),
        (answer(503), OcTransient),
        (answer(408), OcTransient),
        (answer(404), OcRejected),
        (answer(200, classic_failure("access token expired")), OcAuthError),
        (answer(200, classic_failure("Too many requests, slow down")), OcThrottled),
        (answer(200, classic_failure("order [x] doesnt exists")), OcRejected),
        (answer(200, {"code": 0, "success": True, "data": {"weird": 1}}), OcRejected),
    ],
)
def test_status_and_classic_envelope_map_onto_oc_errors(
    response: httpx.Response, expected: type[OcError]
) -> None:
    with pytest.raises(expected) as raised:
        read_answer(response, parse_outbound_query_response, "outbound_query")
    assert type(raised.value) is expected
    assert raised.value.endpoint == "outbound_query"


def test_return2_envelope_failures_are_recognised() -> None:
    token = answer(200, return2_failure("401", "invalid access token"))
    with pytest.raises(OcAuthError):
        read_answer(token, parse_return_stock_response, "return_stock")
    business = answer(200, {"success": True, "hasBusinessException": True, "errorMsg": "bad id"})
    with pytest.raises(OcRejected):
        read_answer(business, parse_return_stock_response, "return_stock")
    ok = answer(200, {"success": True, "result": {"inventoryList": []}})
    assert read_answer(ok, parse_return_stock_response, "return_stock").result is not None


def test_auth_failure_is_read_from_401_or_either_envelope_by_path() -> None:
    assert is_auth_failure(ORDERS, answer(401))
    assert is_auth_failure(ORDERS, answer(200, classic_failure("token invalid")))
    assert not is_auth_failure(ORDERS, answer(200, classic_failure("no such order")))
    assert is_auth_failure(RETURN_STOCK, answer(200, return2_failure("A401", "token expired")))
    assert not is_auth_failure(RETURN_STOCK, answer(200, {"success": True, "result": {}}))
    assert not is_auth_failure(ORDERS, answer(503))
    assert not is_auth_failure(ORDERS, httpx.Response(200, content=b"<html>"))


def test_an_answer_the_auth_check_read_with_the_requests_parser_is_not_parsed_again() -> None:
    calls: list[bytes] = []

    def parse(body: bytes) -> Any:
        calls.append(body)
        return parse_outbound_query_response(body)

    request = httpx.Request("POST", ORDERS.url, extensions={PARSE_EXTENSION: parse})
    ok = answer(200, {"code": 0, "success": True, "data": []})
    assert not is_auth_failure(request, ok)
    assert read_answer(ok, parse, "outbound_query").data == []
    assert len(calls) == 1
    # Another parser's answer is not taken for this one's: it parses for itself.
    assert read_answer(ok, parse_outbound_query_response, "outbound_query").data == []
    refused = answer(200, classic_failure("token expired"))
    assert is_auth_failure(request, refused)
    with pytest.raises(OcAuthError):
        read_answer(refused, parse, "outbound_query")
    assert len(calls) == 2


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s(answer(429, **{"Retry-After": "2"})) == 2.0
    assert retry_after_s(answer(429, **{"Retry-After": "0.5"})) == 0.5
    dated = answer(429, **{"Retry-After": "Sat, 28 Nov 2026 12:00:04 GMT"})
    assert retry_after_s(dated, now) == 4.0
    assert retry_after_s(answer(429, **{"Retry-After": "soon"})) is None
    assert retry_after_s(answer(429)) is None


def test_httpx_failures_become_transient_or_rejected() -> None:
    request = ORDERS
    assert type(transport_error(httpx.ReadTimeout("t", request=request), "x")) is OcTransient
    assert type(transport_error(httpx.ConnectError("c", request=request), "x")) is OcTransient
    assert type(transport_error(httpx.DecodingError("d", request=request), "x")) is OcRejected


def test_busy_answers_are_transient_and_oversized_queries_are_limit_refusals() -> None:
    busy = answer(200, classic_failure("System busy, please try again later"))
    with pytest.raises(OcTransient) as raised:
        read_answer(busy, parse_outbound_query_response, "outbound_query")
    assert type(raised.value) is OcTransient
    too_many = classic_failure("The query matches more than 1000 orders; please narrow it")
    with pytest.raises(OcLimitExceeded):
        read_answer(answer(200, too_many), parse_outbound_query_response, "outbound_query")


def test_secrets_in_token_urls_are_masked_in_httpx_log_lines() -> None:
    url = httpx.URL("http://oc/oauth/token?client_id=c&grant_type=refresh_token&refresh_token=s3")
    record = logging.LogRecord(
        "httpx", logging.INFO, "", 0, "HTTP Request: %s %s", ("POST", url), None
    )
    RedactSecretParams().filter(record)
    assert record.getMessage() == (
        "HTTP Request: POST http://oc/oauth/token?client_id=c&grant_type=refresh_token"
        "&refresh_token=***"
    )

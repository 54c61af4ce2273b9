"""What a simulated endpoint answers, and OC's two envelopes around it.

Handlers return `Ok` or `Fail`; `classic_response` / `return2_response` wrap them the way
OC does: business errors, limit violations and (by default) token failures arrive as
HTTP 200 with `success:false`. OC's error codes are not published: the codes below are the
simulator's own, in OC's style (`code` 3 with an `errors[].code` such as `3A0529`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from starlette.responses import JSONResponse, Response

Outcome = Literal[
    "ok",
    "bad_request",
    "limit_exceeded",
    "not_found",
    "conflict",
    "auth_failure",
    "signature_failure",
    "rate_limited",
    "fault_success_false",
]

# outcome -> (classic `code`, detail code used in errors[].code / errorCode)
ERROR_CODES: Final[dict[str, tuple[int, str]]] = {
    "bad_request": (3, "3A0001"),
    "limit_exceeded": (3, "3A0102"),
    "not_found": (3, "3A0529"),
    "conflict": (3, "3A0409"),
    "auth_failure": (401, "401"),
    "signature_failure": (403, "403"),
    "rate_limited": (429, "429"),
    "fault_success_false": (5, "5A0001"),
}
BUSY_MESSAGE: Final = "System busy, please try again later"


@dataclass(frozen=True, slots=True)
class Ok:
    data: Any
    ids: int = 0
    skus: int = 0
    outcome: Outcome = "ok"


@dataclass(frozen=True, slots=True)
class Fail:
    outcome: Outcome
    message: str
    ids: int = 0
    skus: int = 0
    status: int = 200


Answer = Ok | Fail


def classic_response(answer: Answer, message_id: str | None) -> Response:
    """`{code, success, message, messageId, errors[], data}`."""
    if isinstance(answer, Ok):
        body: dict[str, Any] = {
            "code": 0,
            "success": True,
            "message": "成功",
            "messageId": message_id,
            "errors": [],
            "data": answer.data,
        }
        return JSONResponse(body)
    code, detail = ERROR_CODES[answer.outcome]
    body = {
        "code": code,
        "success": False,
        "message": answer.message,
        "messageId": message_id,
        "errors": [{"code": detail, "id": message_id, "message": answer.message}],
    }
    return JSONResponse(body, status_code=answer.status)


def return2_response(answer: Answer, request_id: str) -> Response:
    """`{requestId, success, hasBusinessException, errorCode, errorMsg, message, result,
    isFallback}`."""
    if isinstance(answer, Ok):
        body: dict[str, Any] = {
            "requestId": request_id,
            "success": True,
            "hasBusinessException": False,
            "errorCode": None,
            "errorMsg": None,
            "message": "OK",
            "result": answer.data,
            "isFallback": False,
        }
        return JSONResponse(body)
    _, detail = ERROR_CODES[answer.outcome]
    body = {
        "requestId": request_id,
        "success": False,
        "hasBusinessException": answer.outcome not in ("fault_success_false", "rate_limited"),
        "errorCode": detail,
        "errorMsg": answer.message,
        "message": answer.message,
        "result": None,
        "isFallback": False,
    }
    return JSONResponse(body, status_code=answer.status)

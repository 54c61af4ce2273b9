"""OC's two response envelopes, and how to tell a failure that arrived as HTTP 200.

Classic (`/3pp/{sku,inventory,inbound,outbound,base}`): `{code, success, message, messageId,
data, errors[]}`, `code` 0 = OK (oc-api README §4.2). Return 2.0 (`/3pp/returns`):
`{requestId, success, hasBusinessException, errorCode, errorMsg, message, result,
isFallback}`. OC answers business errors, and often invalid or expired tokens, with HTTP 200
and `success:false`, so callers must check `is_failure()` / `is_auth_failure()` on every
answer. When a failed answer carries a `data`/`result` of an unexpected shape, the payload
is dropped (read as None) instead of failing the whole parse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final, Generic, TypeVar

from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)

from schemas.tolerant import EpochMillis, NullableList, Text, TolerantModel

DataT = TypeVar("DataT")

_AUTH_FAILURE: Final = re.compile(
    r"token|unauthori[sz]|not authori[sz]|authenticat|auth[\s_-]*fail|login|log in|"
    r"credential|expired|invalid[\s_-]*(client|grant)|forbidden|permission denied|"
    r"\b401\b|令牌|登录|过期|认证|授权|鉴权",
    re.IGNORECASE,
)
_SIGNATURE_FAILURE: Final = re.compile(
    r"signature|sign[\s_-]*(error|fail|invalid|mismatch)|vauthorization|clientkey|"
    r"client[\s_-]*key|签名|验签",
    re.IGNORECASE,
)
_RATE_LIMITED: Final = re.compile(
    r"too many|rate[\s_-]*limit|throttl|frequen|\b429\b|频繁|限流", re.IGNORECASE
)
_OK_CODES: Final = frozenset({"0", "200", "success", "ok"})


def _text(value: int | str | None) -> str | None:
    return None if value is None else (str(value).strip() or None)


def _matches(pattern: re.Pattern[str], texts: Iterable[str | None]) -> bool:
    return any(text and pattern.search(text) for text in texts)


def _drop_payload_of_failure(
    value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
) -> Any:
    try:
        return handler(value)
    except ValidationError:
        earlier = info.data
        failed = earlier.get("success") is False or earlier.get("has_business_exception")
        if failed or str(earlier.get("code", "0")).strip() not in _OK_CODES:
            return None
        raise


class OcError(TolerantModel):
    """One entry of a classic envelope's `errors[]` (CommonVendorResponseErrorMsgDto)."""

    code: int | str | None = None
    id: int | str | None = None
    message: str | None = None


class OcResponse(TolerantModel, Generic[DataT]):
    """The classic envelope, generic over `data`."""

    code: int | str | None = None
    success: bool | None = None
    message: str | None = None
    message_id: Text | None = Field(None, alias="messageId")
    errors: NullableList[OcError] = Field(default_factory=list)
    data: DataT | None = None

    drop_failed_data = field_validator("data", mode="wrap")(_drop_payload_of_failure)

    def is_failure(self) -> bool:
        """`success:false`, or no `success` and a non-zero `code`."""
        if self.success is not None:
            return not self.success
        return self.code is not None and str(self.code).strip().casefold() not in _OK_CODES

    def _texts(self) -> list[str | None]:
        texts: list[str | None] = [self.message, _text(self.code)]
        for error in self.errors:
            texts += [error.message, _text(error.code)]
        return texts

    def is_auth_failure(self) -> bool:
        """A failure that says the access token is missing, invalid or expired.

        Generous on purpose: the cure (refresh the token, retry once) is cheap.
        """
        return self.is_failure() and _matches(_AUTH_FAILURE, self._texts())

    def is_signature_failure(self) -> bool:
        """A failure that blames the clientKey / vAuthorization signature."""
        return self.is_failure() and _matches(_SIGNATURE_FAILURE, self._texts())

    def is_rate_limited(self) -> bool:
        """A failure that says the caller is calling too often."""
        return self.is_failure() and _matches(_RATE_LIMITED, self._texts())

    def error_summary(self) -> str:
        """One line for logs: code and messages, no payload."""
        parts = [f"code={self.code}" if self.code is not None else ""]
        parts += [self.message or ""]
        parts += [f"{_text(e.code)}: {e.message}" for e in self.errors]
        return "; ".join(p for p in parts if p) or "no error detail"


class Return2Response(TolerantModel, Generic[DataT]):
    """The Return 2.0 envelope, generic over `result`."""

    request_id: Text | None = Field(None, alias="requestId")
    success: bool | None = None
    has_business_exception: bool | None = Field(None, alias="hasBusinessException")
    error_code: int | str | None = Field(None, alias="errorCode")
    error_msg: str | None = Field(None, alias="errorMsg")
    message: str | None = None
    is_fallback: bool | None = Field(
        None,
        alias="isFallback",
        description="OC answered from a fallback (degraded) path; the result may be stale.",
    )
    result: DataT | None = None

    drop_failed_result = field_validator("result", mode="wrap")(_drop_payload_of_failure)

    def is_failure(self) -> bool:
        """`success:false`, `hasBusinessException:true` or a non-empty `errorCode`."""
        return (
            self.success is False
            or self.has_business_exception is True
            or bool(_text(self.error_code))
        )

    def _texts(self) -> list[str | None]:
        return [_text(self.error_code), self.error_msg, self.message]

    def is_auth_failure(self) -> bool:
        """A failure that says the access token is missing, invalid or expired."""
        return self.is_failure() and _matches(_AUTH_FAILURE, self._texts())

    def is_signature_failure(self) -> bool:
        return self.is_failure() and _matches(_SIGNATURE_FAILURE, self._texts())

    def is_rate_limited(self) -> bool:
        return self.is_failure() and _matches(_RATE_LIMITED, self._texts())

    def error_summary(self) -> str:
        parts = [_text(self.error_code) or "", self.error_msg or "", self.message or ""]
        return "; ".join(p for p in parts if p) or "no error detail"


class OcRequest(TolerantModel, Generic[DataT]):
    """OC's request envelope `{apiVersion, messageId, timestamp, data}` (README §4.1).

    Reads `timeStamp` and string timestamps; Return 2.0 requests send only messageId + data.
    """

    api_version: str | None = Field(None, alias="apiVersion")
    message_id: Text | None = Field(None, alias="messageId")
    timestamp: EpochMillis | None = None
    data: DataT

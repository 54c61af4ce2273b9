"""OC's OAuth calls (oc-api README §2.1, §6.1): the authorize query, the token request and
the token answer. OC takes every token parameter in the query string of a POST with no body.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import TypeAdapter, model_validator

from schemas.tolerant import Count, TolerantModel


class AuthorizeRequest(TolerantModel):
    """Query of GET /oauth/authorize (the browser step)."""

    response_type: str = "code"
    client_id: str
    redirect_uri: str
    state: str

    def to_query(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump(exclude_none=True).items()}


class TokenRequest(TolerantModel):
    """Query of POST /oauth/token. OC takes every parameter in the query string."""

    client_id: str
    grant_type: str
    redirect_uri: str | None = None
    code: str | None = None
    refresh_token: str | None = None

    @classmethod
    def authorization_code(cls, client_id: str, code: str, redirect_uri: str) -> TokenRequest:
        return cls(
            client_id=client_id,
            grant_type="authorization_code",
            code=code,
            redirect_uri=redirect_uri,
        )

    @classmethod
    def refresh(cls, client_id: str, refresh_token: str) -> TokenRequest:
        return cls(client_id=client_id, grant_type="refresh_token", refresh_token=refresh_token)

    def to_query(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump(exclude_none=True).items()}


class TokenResponse(TolerantModel):
    """Answer of POST /oauth/token, success or error.

    Tolerates the token arriving wrapped in a classic envelope's `data`.
    """

    access_token: str | None = None
    token_type: str | None = None
    expires_in: Count | None = None
    refresh_token: str | None = None
    error: str | None = None
    error_description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, value: Any) -> Any:
        if isinstance(value, dict) and "access_token" not in value:
            inner = value.get("data")
            if isinstance(inner, dict) and "access_token" in inner:
                return {**value, **inner}
        return value

    def is_failure(self) -> bool:
        return bool(self.error) or not self.access_token

    def is_auth_failure(self) -> bool:
        """The grant itself was refused (bad or expired code / refresh token, bad client):
        a retry with the same grant will not help."""
        return bool(self.error) and self.error in {
            "invalid_grant",
            "invalid_client",
            "unauthorized_client",
            "invalid_token",
            "access_denied",
        }


TOKEN_RESPONSE: Final = TypeAdapter(TokenResponse)


def parse_token_response(body: bytes | str) -> TokenResponse:
    return TOKEN_RESPONSE.validate_json(body)

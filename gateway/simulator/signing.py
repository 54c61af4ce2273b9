"""How the sender signs a callback, matching what the gateway is configured to verify.

OC's scheme: `clientKey` + `vAuthorization` = md5(path|body|clientKey|secretKey) over the
target URL's path. Standard Webhooks: `webhook-id` / `webhook-timestamp` /
`webhook-signature` with the first configured secret. A path token is already part of the
target URL. `CallbackSigner.from_settings` reads the same GATEWAY_* settings as the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.ingest import standard_webhooks
from gateway.oc.signing import CLIENT_KEY_HEADER, SIGNATURE_HEADER, oc_signature
from gateway.settings import Settings


@dataclass(frozen=True, slots=True)
class CallbackSigner:
    client_key: str = ""
    secret_key: str = ""
    sign_oc: bool = True
    webhook_secret: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> CallbackSigner:
        secrets = settings.webhook_secrets
        return cls(
            client_key=settings.oc_client_key,
            secret_key=settings.oc_secret_key.get_secret_value(),
            sign_oc=settings.verify_oc_signature,
            webhook_secret=secrets[0].get_secret_value() if secrets else "",
        )

    @property
    def methods(self) -> list[str]:
        used = []
        if self.sign_oc and self.client_key and self.secret_key:
            used.append("oc_signature")
        if self.webhook_secret:
            used.append("standard_webhooks")
        return used

    def headers(self, path: str, body: bytes, webhook_id: str, now_s: int) -> dict[str, str]:
        """The signature headers for one delivery of `body` to `path`."""
        headers: dict[str, str] = {}
        if self.sign_oc and self.client_key and self.secret_key:
            headers[CLIENT_KEY_HEADER] = self.client_key
            headers[SIGNATURE_HEADER] = oc_signature(path, body, self.client_key, self.secret_key)
        if self.webhook_secret:
            headers[standard_webhooks.ID_HEADER] = webhook_id
            headers[standard_webhooks.TIMESTAMP_HEADER] = str(now_s)
            headers[standard_webhooks.SIGNATURE_HEADER] = standard_webhooks.sign(
                self.webhook_secret, webhook_id, now_s, body
            )
        return headers


def oc_request_headers(
    path: str, body: bytes, client_key: str, secret_key: str, access_token: str | None
) -> dict[str, str]:
    """The headers OC expects on a business call (for tests and demos of the simulator)."""
    headers = {
        CLIENT_KEY_HEADER: client_key,
        SIGNATURE_HEADER: oc_signature(path, body, client_key, secret_key),
        "Content-Type": "application/json",
    }
    if access_token is not None:
        headers["Access-Token"] = f"Bearer {access_token}"
    return headers

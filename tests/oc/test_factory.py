"""build_client: off without a base URL, refuses to start half-configured."""

from __future__ import annotations

import pytest

from gateway.errors import ConfigurationError
from gateway.oc.client import OcClient
from gateway.oc.factory import build_client
from gateway.oc.tokens import TokenStore, fingerprint
from gateway.ops.metrics import Metrics
from tests.conftest import SettingsFactory

OC = {"oc_base_url": "http://oc.invalid", "oc_client_key": "ck", "oc_secret_key": "sk"}


def test_no_base_url_means_no_enrichment(make_settings: SettingsFactory) -> None:
    assert build_client(make_settings(), Metrics()) is None


def test_a_configured_account_gets_a_client(make_settings: SettingsFactory) -> None:
    client = build_client(make_settings(**OC, oc_refresh_token="rt"), Metrics())
    assert isinstance(client, OcClient)


@pytest.mark.parametrize("missing", ["oc_client_key", "oc_secret_key", "oc_refresh_token"])
def test_half_configured_oc_refuses_to_start(make_settings: SettingsFactory, missing: str) -> None:
    values = {**OC, "oc_refresh_token": "rt", missing: ""}
    with pytest.raises(ConfigurationError):
        build_client(make_settings(**values), Metrics())


def test_a_stored_refresh_token_is_enough(make_settings: SettingsFactory) -> None:
    settings = make_settings(**OC)
    TokenStore(settings.token_store_path).save("rotated", fingerprint(""))
    assert build_client(settings, Metrics()) is not None

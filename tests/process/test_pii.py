"""Personal data: none reaches a typed topic unless the policy publishes it, and none
reaches the logs whatever the policy says."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.errors import ConfigurationError
from gateway.process.pii import PiiMode, PiiPolicy, keyed_hash, mask
from gateway.simulator.data import WorldSize
from gateway.simulator.state import SimulatorConfig
from schemas.events import Consignee
from tests.conftest import SettingsFactory
from tests.helpers import TOKEN_PATH, KafkaTopicReader, running_app
from tests.processes import GatewayProcess
from tests.simulation import Sim, running_simulator

PERSONAL = (
    "consigneeName",
    "consigneeAddress1",
    "consigneePhone",
    "consigneeEmail",
    "consigneeZipCode",
)
JSON = {"content-type": "application/json"}


def test_mask_keeps_a_hint_and_never_the_value() -> None:
    assert mask("email", "jane.doe@example.com") == "j***@example.com"
    assert mask("phone", "+44 20 7946 0958") == "**********58"
    assert mask("name", "Jane Doe") == "J***"
    assert mask("country_code", "GB") == "GB"


def test_keyed_hash_groups_equal_values_and_depends_on_the_key() -> None:
    assert keyed_hash(b"k", "93 Maresfield Road") == keyed_hash(b"k", " 93  maresfield road ")
    assert keyed_hash(b"k", "93 Maresfield Road") != keyed_hash(b"other", "93 Maresfield Road")
    assert re.fullmatch(r"[0-9a-f]{64}", keyed_hash(b"k", "x"))


def test_policy_is_checked_when_the_gateway_starts() -> None:
    with pytest.raises(ConfigurationError, match="unknown fields"):
        PiiPolicy({"topic": {"shoe_size": "publish"}}, "")
    with pytest.raises(ConfigurationError, match="GATEWAY_PII_HMAC_KEY"):
        PiiPolicy({"topic": {"email": "hash"}}, "")


def test_policy_modes_per_field_with_a_default() -> None:
    policy = PiiPolicy({"t": {"country_code": "publish", "email": "hash", "*": "mask"}}, "key")
    person = Consignee(name="Jane Doe", email="jane@example.com", country_code="GB", phone="12345")
    kept = policy.apply("t", person)
    assert kept is not None
    assert kept.country_code == "GB"
    assert kept.email == keyed_hash(b"key", "jane@example.com")
    assert (kept.name, kept.phone) == ("J***", "***45")
    assert policy.apply("other-topic", person) is None  # unlisted topics drop everything


@pytest.mark.parametrize(
    ("policy", "carries"),
    [
        ({}, False),
        ({"t": {"*": "drop"}}, False),
        ({"t": {"email": "drop", "*": "drop"}}, False),
        ({"t": {"country_code": "publish"}}, True),
        ({"t": {"*": "mask", "email": "drop"}}, True),
        ({"other": {"*": "publish"}}, False),
    ],
)
def test_whether_a_topic_carries_any_personal_data(
    policy: dict[str, dict[str, PiiMode]], carries: bool
) -> None:
    assert PiiPolicy(policy, "key").publishes_any("t") is carries


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    config = SimulatorConfig(seed=31, world_size=WorldSize(orders=0, returns=0))
    async with running_simulator(config) as running:
        yield running


def personal_values(bodies: list[bytes]) -> set[str]:
    values = set()
    for body in bodies:
        for item in json.loads(body)["data"]:
            values |= {str(item[k]) for k in PERSONAL if len(str(item.get(k) or "")) >= 4}
    return values


@pytest.mark.kafka
@pytest.mark.parametrize("mode", ["drop", "mask", "hash", "publish"])
async def test_typed_topics_carry_personal_data_only_as_the_policy_says(
    make_settings: SettingsFactory, kafka_bootstrap: str, sim: Sim, mode: str
) -> None:
    outbound = f"outbound.pii-{mode}-{uuid.uuid4().hex[:6]}"
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_outbound=outbound,
        pii_policy={outbound: {"*": mode}},
        pii_hmac_key="pii-test-key",
    )
    bodies = await sim.callbacks(6, "outbound")
    values = personal_values(bodies)
    assert values  # the simulator's callbacks carry consignees
    async with running_app(settings) as (client, _):
        for body in bodies:
            assert (
                await client.post(f"{TOKEN_PATH}/outbound", content=body, headers=JSON)
            ).status_code == 200
        typed: list[Any] = []
        for topic in (outbound, settings.topic_returns, settings.topic_inventory):
            async with KafkaTopicReader(kafka_bootstrap, topic) as reader:
                if topic == outbound:
                    await reader.read_until(len(bodies))
                typed += await reader.drain(quiet_s=1.0)
        async with KafkaTopicReader(kafka_bootstrap, settings.topic_raw) as raw:
            archived = await raw.read_until(len(bodies))

    published = b"\n".join(r.value for r in typed).decode()
    leaked = {v for v in values if v in published}
    consignees = [json.loads(r.value)["consignee"] for r in typed if r.topic == outbound]
    if mode == "publish":
        assert leaked == values
    else:
        assert leaked == set()
    if mode == "drop":
        assert consignees == [None] * len(bodies)
    if mode == "hash":
        names = {c["name"] for c in consignees}
        assert all(re.fullmatch(r"[0-9a-f]{64}", n) for n in names)
    if mode == "mask":
        assert all(c["name"].endswith("***") for c in consignees)
    # The raw topic keeps OC's bytes untouched (and must be access-restricted).
    assert {r.value for r in archived} == set(bodies)


async def test_logs_never_carry_personal_data(tmp_path: Path, sim: Sim) -> None:
    bodies = await sim.callbacks(10, "outbound")
    values = personal_values(bodies)
    policy = json.dumps({"oc.outbound.orders.v1": {"*": "publish"}})
    gateway = GatewayProcess(
        {
            "GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "GATEWAY_PATH_TOKENS": "test-token",
            "GATEWAY_PII_POLICY": policy,
            "GATEWAY_LOG_LEVEL": "debug",
        },
        tmp_path / "gateway.log",
    )
    gateway.start()
    try:
        async with httpx.AsyncClient() as client:
            for body in [*bodies, b'{"data": [{"consigneeName": "Quarantined Person"}]}']:
                response = await client.post(
                    f"{gateway.url}/webhooks/oc/test-token/outbound", content=body, headers=JSON
                )
                assert response.status_code == 200
    finally:
        assert gateway.terminate() == 0
    log = gateway.log_path.read_text()
    assert log.count('"callback"') >= len(bodies)  # the log did record every callback
    assert {v for v in values if v in log} == set()
    assert "Quarantined Person" not in log

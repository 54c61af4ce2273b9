"""The committed JSON Schemas and AsyncAPI document match the models and stay compatible."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Literal

import pytest

from schemas import generate
from schemas.asyncapi import build_asyncapi, event_type
from schemas.compat import breaking_changes
from schemas.events import (
    EVENT_MODELS,
    INVENTORY_LEVEL,
    OUTBOUND_STATUS_CHANGED,
    OutboundOrderStatusChanged,
)

SCHEMAS = generate.SCHEMAS_DIR


def test_committed_artefacts_equal_freshly_generated_ones() -> None:
    stale = generate.stale_files(SCHEMAS, generate.artefacts())
    assert not stale, (
        f"generated schema files are out of date: {stale}; "
        f"run `{generate.REGENERATE_COMMAND}` and commit the result"
    )


def test_models_are_backward_compatible_with_the_committed_schemas() -> None:
    breaking = generate.breaking_against_committed(SCHEMAS, generate.artefacts())
    assert not breaking, (
        "a model change breaks a published event schema: "
        + "; ".join(f"{name}: {', '.join(map(str, c))}" for name, c in breaking.items())
        + ". Publish a new event type version (.vN+1) instead."
    )


def test_a_breaking_model_change_is_caught_against_the_committed_schema() -> None:
    class Narrowed(OutboundOrderStatusChanged):
        status: Literal["created", "shipped"]
        carrier: str  # a new required field

    committed = json.loads((SCHEMAS / "jsonschema" / f"{OUTBOUND_STATUS_CHANGED}.json").read_text())
    changes = {str(c) for c in breaking_changes(committed, generate.event_json_schema(Narrowed))}
    assert "/carrier: new required field" in changes
    assert any(c.startswith("/status: enum narrowed") for c in changes)


def test_every_event_model_has_a_committed_schema_file() -> None:
    for model in EVENT_MODELS:
        path = SCHEMAS / "jsonschema" / f"{event_type(model)}.json"
        document = json.loads(path.read_text(encoding="utf-8"))
        assert document["$id"] == f"urn:oc-gateway:jsonschema:{event_type(model)}"
        assert document["properties"]["type"]["const"] == event_type(model)


def test_the_asyncapi_document_lists_every_topic_with_its_key_and_headers() -> None:
    document = build_asyncapi()
    addresses = {c["address"] for c in document["channels"].values()}
    assert addresses == {
        "oc.callbacks.raw.v1",
        "oc.outbound.orders.v1",
        "oc.returns.v1",
        "oc.inventory.levels.v1",
        "oc.callbacks.quarantine.v1",
        "oc.gateway.dlq.v1",
    }
    inventory = document["channels"]["inventoryLevels"]["bindings"]["kafka"]
    assert inventory["topicConfiguration"]["cleanup.policy"] == ["compact"]
    messages = document["components"]["messages"]
    ce_headers = messages["inventoryLevel"]["headers"]["properties"]
    assert ce_headers["ce_type"]["const"] == INVENTORY_LEVEL
    assert {"ce_id", "ce_source", "ce_time", "ce_subject", "traceparent"} <= set(ce_headers)
    assert messages["inventoryLevel"]["payload"] == {"$ref": f"./jsonschema/{INVENTORY_LEVEL}.json"}
    dlq = messages["deadLetter"]["headers"]["properties"]
    assert {"gw-reason", "gw-attempts", "gw-original-offset", "gw-delivery-id"} <= set(dlq)
    raw = messages["rawCallback"]["headers"]["properties"]
    assert raw["gw-kind"]["enum"] == ["outbound", "return", "inventory"]


@pytest.mark.timeout(900)  # a cold `npm ci` downloads the parser first
def test_asyncapi_document_passes_the_official_parser(asyncapi_validator: list[str]) -> None:
    report = _validate(asyncapi_validator, SCHEMAS / "asyncapi.yaml")
    errors = [d for d in report["diagnostics"] if d["severity"] == 0]
    assert report["parsed"], report
    assert errors == [], errors


@pytest.mark.timeout(900)
def test_the_parser_check_catches_a_broken_document(
    asyncapi_validator: list[str], tmp_path: Path
) -> None:
    broken = (SCHEMAS / "asyncapi.yaml").read_text(encoding="utf-8")
    broken = broken.replace(f"./jsonschema/{INVENTORY_LEVEL}.json", "./jsonschema/missing.json")
    broken = broken.replace("action: send", "action: publish", 1)
    (tmp_path / "jsonschema").mkdir()
    for path in (SCHEMAS / "jsonschema").glob("*.json"):
        (tmp_path / "jsonschema" / path.name).write_bytes(path.read_bytes())
    target = tmp_path / "asyncapi.yaml"
    target.write_text(broken, encoding="utf-8")
    report = _validate(asyncapi_validator, target)
    assert any(d["severity"] == 0 for d in report["diagnostics"]), report


def _validate(command: list[str], document: Path) -> dict[str, Any]:
    result = subprocess.run(
        [*command, str(document)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.stdout.strip(), f"validator printed nothing; stderr: {result.stderr}"
    report: dict[str, Any] = json.loads(result.stdout)
    return report


# --- the generator itself ---------------------------------------------------------------


def test_generate_writes_then_reports_nothing_stale(tmp_path: Path) -> None:
    assert generate.main([], root=tmp_path) == 0
    assert (tmp_path / "asyncapi.yaml").is_file()
    assert generate.main(["--check"], root=tmp_path) == 0
    (tmp_path / "jsonschema" / f"{INVENTORY_LEVEL}.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "jsonschema" / "oc.retired.v1.json").write_text("{}\n", encoding="utf-8")
    assert set(generate.stale_files(tmp_path, generate.artefacts())) == {
        f"jsonschema/{INVENTORY_LEVEL}.json",
        "jsonschema/oc.retired.v1.json",
    }
    assert generate.main(["--check"], root=tmp_path) == 1


def test_generate_refuses_to_overwrite_a_schema_with_a_breaking_change(tmp_path: Path) -> None:
    assert generate.main([], root=tmp_path) == 0
    committed = tmp_path / "jsonschema" / f"{INVENTORY_LEVEL}.json"
    widened = json.loads(committed.read_text(encoding="utf-8"))
    widened["properties"]["retiredField"] = {"type": "string"}  # a field the models dropped
    committed.write_text(json.dumps(widened), encoding="utf-8")
    assert generate.main([], root=tmp_path) == 2
    assert "retiredField" in committed.read_text(encoding="utf-8")
    assert generate.main(["--allow-breaking"], root=tmp_path) == 0
    assert "retiredField" not in committed.read_text(encoding="utf-8")


def test_a_removed_event_type_is_reported_as_breaking(tmp_path: Path) -> None:
    (tmp_path / "jsonschema").mkdir()
    (tmp_path / "jsonschema" / "oc.retired.v1.json").write_text("{}", encoding="utf-8")
    breaking = generate.breaking_against_committed(tmp_path, generate.artefacts())
    assert [str(c) for c in breaking["jsonschema/oc.retired.v1.json"]] == ["/: event type removed"]

"""The backward-compatibility checker: what breaks an event schema and what does not."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from schemas.compat import Incompatibility, breaking_changes
from schemas.events import EVENT_MODELS, EventModel
from schemas.generate import event_json_schema


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(by_alias=True, mode="serialization")


def _reasons(old: type[BaseModel], new: type[BaseModel]) -> list[str]:
    return [str(c) for c in breaking_changes(_schema(old), _schema(new))]


class Line(EventModel):
    sku: str
    quantity: int | None = None


class Base(EventModel):
    type: Literal["x.v1"] = "x.v1"
    order_number: str
    status: Literal["created", "shipped", "unknown"]
    weight: Decimal | None = None
    at: datetime
    lines: list[Line] = Field(default_factory=list)
    note: str | None = None


class AddsOptionalField(Base):
    carrier: str | None = None


class RemovesField(EventModel):
    type: Literal["x.v1"] = "x.v1"
    order_number: str
    status: Literal["created", "shipped", "unknown"]
    weight: Decimal | None = None
    at: datetime
    lines: list[Line] = Field(default_factory=list)


class ChangesType(EventModel):
    type: Literal["x.v1"] = "x.v1"
    order_number: int
    status: Literal["created", "shipped", "unknown"]
    weight: Decimal | None = None
    at: datetime
    lines: list[Line] = Field(default_factory=list)
    note: str | None = None


class AddsRequiredField(Base):
    carrier: str


class NarrowsEnum(EventModel):
    type: Literal["x.v1"] = "x.v1"
    order_number: str
    status: Literal["created", "shipped"]
    weight: Decimal | None = None
    at: datetime
    lines: list[Line] = Field(default_factory=list)
    note: str | None = None


class WidensEnum(EventModel):
    type: Literal["x.v1"] = "x.v1"
    order_number: str
    status: Literal["created", "shipped", "delivered", "unknown"]
    weight: Decimal | None = None
    at: datetime
    lines: list[Line] = Field(default_factory=list)
    note: str | None = None


class NoteNoLongerNullable(Base):
    note: str = ""


class LineV2(EventModel):
    sku: str
    quantity: str | None = None


class NestedTypeChange(Base):
    lines: list[LineV2] = Field(default_factory=list)  # type: ignore[assignment]


class DescribedDifferently(Base):
    note: str | None = Field(None, description="Free text from OC.")


def test_identical_models_are_compatible() -> None:
    assert _reasons(Base, Base) == []


@pytest.mark.parametrize("new", [AddsOptionalField, WidensEnum, DescribedDifferently])
def test_additive_changes_are_compatible(new: type[BaseModel]) -> None:
    assert _reasons(Base, new) == []


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (RemovesField, ["/note: field removed"]),
        (ChangesType, ["/orderNumber: type changed: string no longer accepted"]),
        (AddsRequiredField, ["/carrier: new required field"]),
        (NarrowsEnum, ["/status: enum narrowed: ['unknown'] removed"]),
        (NoteNoLongerNullable, ["/note: type changed: null no longer accepted"]),
        (NestedTypeChange, ["/lines/items/quantity: type changed: integer no longer accepted"]),
    ],
)
def test_breaking_changes_are_named(new: type[BaseModel], expected: list[str]) -> None:
    assert _reasons(Base, new) == expected


def test_field_made_required_is_breaking() -> None:
    old = {"type": "object", "properties": {"a": {"type": "string"}}}
    new = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    assert [str(c) for c in breaking_changes(old, new)] == ["/a: field became required"]


def test_integer_widened_to_number_is_compatible_but_not_the_reverse() -> None:
    integer = {"type": "object", "properties": {"n": {"type": "integer"}}}
    number = {"type": "object", "properties": {"n": {"type": "number"}}}
    assert breaking_changes(integer, number) == []
    assert breaking_changes(number, integer) == [
        Incompatibility("/n", "type changed: number no longer accepted")
    ]


def test_format_change_and_const_change_are_breaking() -> None:
    old = {"properties": {"at": {"type": "string", "format": "date-time"}, "t": {"const": "a.v1"}}}
    new = {"properties": {"at": {"type": "string", "format": "date"}, "t": {"const": "a.v2"}}}
    assert [str(c) for c in breaking_changes(old, new)] == [
        "/at: format changed: date-time -> date",
        "/t: enum narrowed: ['a.v1'] removed",
    ]


def test_free_string_narrowed_to_enum_is_breaking() -> None:
    old = {"properties": {"s": {"type": "string"}}}
    new = {"properties": {"s": {"enum": ["a", "b"]}}}
    assert [str(c) for c in breaking_changes(old, new)] == [
        "/s: narrowed: string now limited to ['a', 'b']"
    ]


def test_refs_type_lists_and_unions_of_objects_are_followed() -> None:
    a = {"type": "object", "properties": {"kind": {"const": "a"}, "x": {"type": "string"}}}
    b = {"type": "object", "properties": {"kind": {"const": "b"}, "y": {"type": "integer"}}}
    old: dict[str, Any] = {
        "$defs": {"A": a, "B": b},
        "properties": {
            "item": {"anyOf": [{"$ref": "#/$defs/A"}, {"$ref": "#/$defs/B"}]},
            "tags": {"type": ["array", "null"], "items": {"type": "string"}},
        },
    }
    same_reordered = {
        **old,
        "properties": {
            "item": {"oneOf": [{"$ref": "#/$defs/B"}, {"$ref": "#/$defs/A"}]},
            "tags": {"anyOf": [{"type": "null"}, {"type": "array", "items": {"type": "string"}}]},
        },
    }
    assert breaking_changes(old, same_reordered) == []
    b_changed = {
        **old,
        "$defs": {"A": a, "B": {"type": "object", "properties": {"kind": {"const": "b"}}}},
    }
    assert [str(c) for c in breaking_changes(old, b_changed)] == ["/item/y: field removed"]


def test_recursive_schemas_terminate() -> None:
    tree = {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
            }
        },
        "$ref": "#/$defs/Node",
    }
    assert breaking_changes(tree, tree) == []


def test_an_unresolvable_ref_is_an_error_not_a_pass() -> None:
    with pytest.raises(ValueError, match="cannot resolve"):
        breaking_changes({"$ref": "other.json#/x"}, {"type": "object"})


@pytest.mark.parametrize("model", EVENT_MODELS, ids=lambda m: m.__name__)
def test_every_real_event_schema_is_compatible_with_itself(model: type[EventModel]) -> None:
    schema = event_json_schema(model)
    assert breaking_changes(schema, schema) == []


def test_removing_a_field_from_a_real_event_is_caught() -> None:
    schema = event_json_schema(EVENT_MODELS[0])
    trimmed = {**schema, "properties": dict(schema["properties"])}
    del trimmed["properties"]["orderNumber"]
    assert Incompatibility("/orderNumber", "field removed") in breaking_changes(schema, trimmed)

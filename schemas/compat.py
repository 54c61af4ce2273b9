"""Backward-compatibility check between two JSON Schemas of the same event (pure).

A change is breaking when data valid under one version stops being understood under the
other: a field removed, a field's type changed or narrowed (a type dropped from a union,
`integer` <- `number`, a `format` changed), a new required field (or an optional one made
required), or an enum/const narrowed (a value removed). Adding optional fields, widening
a union or an enum, and editing descriptions are not breaking. Works on the JSON Schema
subset pydantic emits: `$ref` into `$defs`, `anyOf`/`oneOf`, `allOf`, `type` (string or
list), `enum`, `const`, `properties`, `required`, `items`, `additionalProperties`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Schema = Mapping[str, Any]

_JSON_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")


@dataclass(frozen=True, slots=True)
class Incompatibility:
    """One breaking difference: where (a JSON-pointer-like path) and what."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path or '/'}: {self.reason}"


class _Doc:
    """A schema document, for resolving its local `$ref`s."""

    def __init__(self, root: Schema) -> None:
        self.root = root

    def resolve(self, schema: Schema) -> Schema:
        seen: set[str] = set()
        while isinstance(schema, Mapping) and "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/") or ref in seen:
                raise ValueError(f"cannot resolve $ref {ref!r}")
            seen.add(ref)
            target: Any = self.root
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **extra} if extra else target
        return schema


def _branches(doc: _Doc, schema: Schema) -> list[Schema]:
    """The alternatives a value may match, flattened through anyOf/oneOf and refs."""
    resolved = doc.resolve(schema)
    for keyword in ("anyOf", "oneOf"):
        if keyword in resolved:
            found: list[Schema] = []
            for option in resolved[keyword]:
                found += _branches(doc, option)
            return found
    if "allOf" in resolved and len(resolved["allOf"]) == 1:
        return _branches(doc, resolved["allOf"][0])
    return [resolved]


def _kinds(schema: Schema) -> set[str]:
    """JSON types a (resolved, single-branch) schema admits; all of them when untyped."""
    if "const" in schema:
        return {_type_of(schema["const"])}
    if "enum" in schema:
        return {_type_of(v) for v in schema["enum"]}
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return set(declared)
    if "properties" in schema:
        return {"object"}
    if "items" in schema:
        return {"array"}
    return set(_JSON_TYPES)


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _admits(kinds: set[str], kind: str) -> bool:
    return kind in kinds or (kind == "integer" and "number" in kinds)


def _values(schema: Schema) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    if "enum" in schema:
        return list(schema["enum"])
    return None


class _Checker:
    def __init__(self, old: Schema, new: Schema) -> None:
        self.old, self.new = _Doc(old), _Doc(new)
        self.active: set[tuple[str, str]] = set()

    def compare(self, old: Schema, new: Schema, path: str) -> Iterator[Incompatibility]:
        refs = (old.get("$ref"), new.get("$ref"))
        if isinstance(refs[0], str) and isinstance(refs[1], str):
            pair = (refs[0], refs[1])
            if pair in self.active:  # a recursive model: this pair is already being compared
                return
            self.active.add(pair)
            try:
                yield from self._compare(old, new, path)
            finally:
                self.active.discard(pair)
        else:
            yield from self._compare(old, new, path)

    def _compare(self, old: Schema, new: Schema, path: str) -> Iterator[Incompatibility]:
        old_branches, new_branches = _branches(self.old, old), _branches(self.new, new)
        for branch in old_branches:
            for kind in sorted(_kinds(branch)):
                matches = [b for b in new_branches if _admits(_kinds(b), kind)]
                if not matches:
                    yield Incompatibility(path, f"type changed: {kind} no longer accepted")
                    continue
                yield from self._best_match(branch, matches, kind, path)

    def _best_match(
        self, old: Schema, candidates: list[Schema], kind: str, path: str
    ) -> Iterator[Incompatibility]:
        """Compare with the new branch that fits best (several objects in one union)."""
        if kind not in ("object", "array") or len(candidates) == 1:
            yield from self._same_kind(old, candidates, kind, path)
            return
        best: list[Incompatibility] | None = None
        for candidate in candidates:
            found = list(self._same_kind(old, [candidate], kind, path))
            if best is None or len(found) < len(best):
                best = found
            if not found:
                break
        yield from best or []

    def _same_kind(
        self, old: Schema, candidates: list[Schema], kind: str, path: str
    ) -> Iterator[Incompatibility]:
        new = candidates[0]
        yield from self._enum(old, candidates, kind, path)
        if kind == "string" and old.get("format") and new.get("format") != old["format"]:
            yield Incompatibility(path, f"format changed: {old['format']} -> {new.get('format')}")
        if kind == "object":
            yield from self._object(old, new, path)
        if kind == "array" and "items" in old:
            yield from self.compare(old["items"], new.get("items", {}), f"{path}/items")

    def _enum(
        self, old: Schema, candidates: list[Schema], kind: str, path: str
    ) -> Iterator[Incompatibility]:
        old_values = _values(old)
        accepted: set[Any] = set()
        for candidate in candidates:
            values = _values(candidate)
            if values is None:
                return  # some new branch takes any value of this type
            accepted.update(v for v in values if _type_of(v) == kind)
        if old_values is None:
            yield Incompatibility(path, f"narrowed: {kind} now limited to {sorted(accepted)}")
            return
        removed = [v for v in old_values if _type_of(v) == kind and v not in accepted]
        if removed:
            yield Incompatibility(path, f"enum narrowed: {removed} removed")

    def _object(self, old: Schema, new: Schema, path: str) -> Iterator[Incompatibility]:
        old_props: Mapping[str, Any] = old.get("properties", {})
        new_props: Mapping[str, Any] = new.get("properties", {})
        old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
        for name, old_prop in old_props.items():
            if name not in new_props:
                yield Incompatibility(f"{path}/{name}", "field removed")
                continue
            yield from self.compare(old_prop, new_props[name], f"{path}/{name}")
        for name in sorted(new_required - old_required):
            why = "new required field" if name not in old_props else "field became required"
            yield Incompatibility(f"{path}/{name}", why)


def breaking_changes(old: Schema, new: Schema) -> list[Incompatibility]:
    """Every breaking difference from `old` to `new` (empty when compatible)."""
    checker = _Checker(old, new)
    return list(dict.fromkeys(checker.compare(old, new, "")))

"""The lenient base every OC model builds on: key matching, OC's time formats, sloppy values.

OC's payloads mix key spellings (`MFSKUID`/`mfskuid`, `timestamp`/`timeStamp`), send numbers
as strings and datetimes with `+0800`-style offsets or as epoch milliseconds. Models built
on `TolerantModel` accept all of that, keep keys they do not know (`extra="allow"`) and
serialise back with OC's own spelling and time format.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from typing import Annotated, Any, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

T = TypeVar("T")

OC_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
"""OC's documented datetime format, e.g. `2018-11-28T20:09:57+0800`."""

OC_TIMEZONE = timezone(timedelta(hours=8))
"""The offset OC's own examples use (China Standard Time)."""

_EPOCH_SECONDS_BELOW = 100_000_000_000
"""Epoch numbers below this are seconds, not milliseconds (1e11 ms is March 1973)."""

_DATE_ONLY = re.compile(r"^(\d{4}-\d{2}-\d{2})\s*(Z|[+-]\d{2}:?\d{2})?$")
_SLASHED = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_NUMERIC = re.compile(r"^-?\d+(\.\d+)?$")


def match_key(name: str) -> str:
    """The form two keys share when they differ only in case, `_` or `-`."""
    return name.replace("_", "").replace("-", "").casefold()


def _offset(text: str) -> timezone:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _from_epoch(number: float) -> datetime:
    seconds = number if abs(number) < _EPOCH_SECONDS_BELOW else number / 1000
    return datetime.fromtimestamp(seconds, tz=UTC)


def _from_text(text: str) -> datetime:
    if len(text) >= 19 and text[10] == "T":  # OC's own format and ISO-8601: the common case
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if _NUMERIC.match(text):
        return _from_epoch(float(text))
    if found := _DATE_ONLY.match(text):
        day = date.fromisoformat(found.group(1))
        tz = _offset(found.group(2)) if found.group(2) else UTC
        return datetime.combine(day, time(), tzinfo=tz)
    if found := _SLASHED.match(text):
        year, month, day_, hour, minute, second = (int(p) if p else 0 for p in found.groups())
        return datetime(year, month, day_, hour, minute, second, tzinfo=UTC)
    parsed = datetime.fromisoformat(text)
    # OC always sends an offset; a bare local time is read as UTC rather than guessed at.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_oc_datetime(value: Any) -> datetime:
    """An aware datetime from any of OC's spellings.

    Accepts `2018-11-28T20:09:57+0800`, ISO-8601 (`+08:00`, `Z`, fractions), epoch
    milliseconds as an int or a numeric string (numbers below 1e11 are read as seconds),
    `2018-11-28+0800` (midnight at that offset) and `yyyy/MM/dd HH:mm:ss`. A time without
    an offset is taken as UTC. Raises ValueError for anything else.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, bool):
        raise ValueError("a boolean is not a datetime")
    if isinstance(value, int | float):
        return _from_epoch(value)
    if isinstance(value, str) and value.strip():
        try:
            return _from_text(value.strip())
        except ValueError as exc:
            raise ValueError(f"not an OC datetime: {value!r}") from exc
    raise ValueError(f"not an OC datetime: {value!r}")


def format_oc_datetime(value: datetime) -> str:
    """`value` in OC's format (`+0800` offset, no colon); fractions kept when present."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    if aware.microsecond:
        return aware.strftime("%Y-%m-%dT%H:%M:%S.%f%z")
    return aware.strftime(OC_DATETIME_FORMAT)


OcDateTime = Annotated[
    datetime,
    BeforeValidator(parse_oc_datetime),
    PlainSerializer(format_oc_datetime, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "description": "yyyy-MM-ddTHH:mm:ss+hhmm"}),
]
"""A datetime read from any OC spelling and written back in OC's format."""


def _epoch_millis(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, str) and value.strip() and not _NUMERIC.match(value.strip()):
        return int(parse_oc_datetime(value).timestamp() * 1000)
    if isinstance(value, str) and _NUMERIC.match(value.strip()):
        return int(Decimal(value.strip()))
    return value


EpochMillis = Annotated[int, BeforeValidator(_epoch_millis)]
"""An envelope `timestamp`: epoch milliseconds, also read from a numeric string or a datetime
string (converted). Kept as the number so the envelope round-trips unchanged."""


def epoch_millis_to_datetime(value: int) -> datetime:
    """An aware UTC datetime for epoch milliseconds (values below 1e11 are seconds)."""
    return _from_epoch(value)


def _decimal(value: Any) -> Any:
    if isinstance(value, str) and value.strip() == "":
        return None
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _as_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


DecimalNumber = Annotated[
    Decimal,
    BeforeValidator(_decimal),
    PlainSerializer(_as_number, return_type=int | float, when_used="json"),
]
"""A decimal OC sends as a JSON number (`feeAmount: 19`); written back as a number."""

DecimalString = Annotated[
    Decimal,
    BeforeValidator(_decimal),
    PlainSerializer(str, return_type=str, when_used="json"),
]
"""A decimal OC sends as a string (`chargeableWeight: "11000.0000"`); digits are kept."""


def _to_text(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_to_text)]
"""A string that OC sometimes sends as a number (codes, ids)."""


def _lenient_int(value: Any) -> Any:
    if isinstance(value, str):
        stripped = value.strip()
        if stripped == "":
            return None
        try:
            number = Decimal(stripped)
        except InvalidOperation:
            return value
        return int(number) if number == number.to_integral_value() else value
    return value


Count = Annotated[int, BeforeValidator(_lenient_int)]
"""A quantity: an int, or a string holding one (`"2"`, `"2.0"`)."""


def _list_or_one(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, Mapping | str):
        return [value]
    return value


ListOrOne = Annotated[list[T], BeforeValidator(_list_or_one)]
"""A list that OC may send as one object, or as null (read as empty)."""


def _none_to_list(value: Any) -> Any:
    return [] if value is None else value


NullableList = Annotated[list[T], BeforeValidator(_none_to_list)]
"""A list that OC may send as null (read as empty)."""


@cache
def _key_table(model: type[BaseModel]) -> Mapping[str, str]:
    """match_key(spelling) -> the exact key pydantic accepts, for every field of `model`."""
    table: dict[str, str] = {}
    for name, field in model.model_fields.items():
        spellings = [name]
        if field.alias:
            spellings.insert(0, field.alias)
        if isinstance(field.validation_alias, str):
            spellings.insert(0, field.validation_alias)
        elif isinstance(field.validation_alias, AliasChoices):
            spellings[:0] = [c for c in field.validation_alias.choices if isinstance(c, str)]
        for spelling in spellings:
            table.setdefault(match_key(spelling), spelling)
    return table


@lru_cache(maxsize=8192)
def _target(model: type[BaseModel], key: str) -> str | None:
    """The exact key pydantic accepts for an incoming `key` of `model` (bounded cache:
    incoming keys are not under our control)."""
    return _key_table(model).get(match_key(key))


_SHAPES_PER_MODEL = 4096
_shapes: dict[type[BaseModel], dict[tuple[Any, ...], bool]] = {}


def _needs_renaming(model: type[BaseModel], keys: tuple[Any, ...]) -> bool:
    """Whether any of `keys` must be renamed to match `model`'s fields, remembered per
    key set (OC sends the same few shapes again and again; the memory is bounded, since
    incoming keys are not under our control)."""
    known = _shapes.setdefault(model, {})
    found = known.get(keys)
    if found is None:
        found = any(isinstance(k, str) and _target(model, k) not in (None, k) for k in keys)
        if len(known) < _SHAPES_PER_MODEL:
            known[keys] = found
    return found


class TolerantModel(BaseModel):
    """Base of OC's payload models: unknown keys kept, key spellings matched loosely.

    An incoming key that matches a field's name or alias after ignoring case, `_` and `-`
    is renamed to that alias before validation. When OC sends both an exact key and a
    variant, the exact key wins and the variant is kept as an unknown field.
    """

    model_config = ConfigDict(
        extra="allow",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _match_keys(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        # Fast path: the keys OC sends repeat from callback to callback, and usually
        # none needs renaming; then the mapping goes through untouched.
        if not _needs_renaming(cls, tuple(data)):
            return data
        table = _key_table(cls)
        matched: dict[Any, Any] = {}
        variants: list[tuple[str, Any]] = []
        for key, value in data.items():
            target = table.get(match_key(key)) if isinstance(key, str) else None
            if target is None or target == key:
                matched[key] = value
            else:
                variants.append((target, (key, value)))
        for target, (key, value) in variants:
            if target in matched:
                matched[key] = value
            else:
                matched[target] = value
        return matched

    def extra_fields(self) -> dict[str, Any]:
        """The keys OC sent that no field of this model declares."""
        return dict(self.model_extra or {})

    def first_extra(self, *spellings: str) -> Any:
        """The first unknown key whose spelling matches one of `spellings` loosely."""
        wanted = [match_key(s) for s in spellings]
        extras = self.model_extra or {}
        for want in wanted:
            for key, value in extras.items():
                if match_key(key) == want and value not in (None, ""):
                    return value
        return None

    def to_oc_json(self) -> bytes:
        """The model as OC spells it: OC's keys and time format, unset fields left out
        (re-serialises a parsed payload faithfully)."""
        return self.model_dump_json(by_alias=True, exclude_unset=True).encode()

    def to_request_json(self) -> bytes:
        """The model as a request body: OC's keys and time format, defaults included,
        None left out. Sign exactly these bytes."""
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()

    def to_oc_dict(self) -> dict[str, Any]:
        """Like `to_oc_json`, as a JSON-ready dict."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

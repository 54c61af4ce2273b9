"""Which entities a decoded callback concerns, found without building its models.

Ingest needs only this much of a callback (DESIGN §1: "parse and check just enough to
know which entity it concerns"); building the whole tolerant model costs more than the
rest of the request. `outbound_keys` reads the order numbers the way the models would
(`schemas.callbacks.OutboundCallback.entities()`): the envelope's `data` (any key
spelling, one object or a list, or a bare item or list), each item's `orderNumber` (the
exact spelling first, else the first spelling that matches loosely; numbers as text).
When the document is not plainly of that shape it answers None, and the caller parses it
in full (which then says precisely what is wrong). A callback whose other fields are
wrong is the processor's to refuse, with the reason, into the dead-letter topic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from schemas.tolerant import match_key

_DATA: Final = "data"
_ORDER_NUMBER: Final = "orderNumber"
_ORDER_NUMBER_MATCH: Final = match_key(_ORDER_NUMBER)


def _loose(document: Mapping[Any, Any], exact: str, loose: str) -> tuple[bool, Any]:
    """(found, value) of `exact`, else of the first key matching `loose` loosely."""
    if exact in document:
        return True, document[exact]
    for key, value in document.items():
        if isinstance(key, str) and match_key(key) == loose:
            return True, value
    return False, None


def _items(document: Any) -> list[Any] | None:
    if isinstance(document, list):
        return document
    if not isinstance(document, Mapping):
        return None
    found, data = _loose(document, _DATA, _DATA)
    if not found:
        return [document]  # a bare item
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping):
        return [data]
    return None


def outbound_keys(document: Any) -> list[str] | None:
    """The order numbers of an outbound callback, in first-seen order, or None when the
    document is not plainly an outbound callback (parse it in full)."""
    items = _items(document)
    if not items:
        return None
    keys: dict[str, None] = {}
    for item in items:
        if not isinstance(item, Mapping):
            return None
        found, number = _loose(item, _ORDER_NUMBER, _ORDER_NUMBER_MATCH)
        if not found:
            return None
        if isinstance(number, str):
            keys[number] = None
        elif isinstance(number, int | float) and not isinstance(number, bool):
            keys[str(number)] = None
        else:
            return None
    return list(keys)

"""Which events a ``WaitEvent(match=...)`` takes: the one rule every store follows.

A ``match`` fits an event's data when the data is a JSON object that holds **every key** of the
match with a value **equal as a JSON value**:

* numbers compare by numeric value: ``1`` equals ``1.0``;
* booleans are not numbers: ``true`` does not equal ``1``, ``false`` does not equal ``0``;
* ``null`` equals only ``null``, and the key must be present: ``{"k": None}`` needs ``"k": null``
  in the data, a missing ``"k"`` does not fit;
* strings compare exactly (no case folding, no normalisation);
* arrays compare element by element, objects key by key (in any order), by these same rules.

An empty or missing match fits any data. This is what PostgreSQL's ``jsonb`` equality does per
key (``data ? k AND data -> k = match -> k``); the in-memory test environment and the SQLite and
MySQL adapters call :func:`data_matches`.
"""

from __future__ import annotations

from typing import Any

_NUMBERS = (int, float)


def json_equal(a: Any, b: Any) -> bool:
    """Whether two JSON values (as decoded to Python builtins) are equal as JSON values."""
    if type(a) is bool or type(b) is bool:
        return a is b
    if isinstance(a, _NUMBERS) and isinstance(b, _NUMBERS):
        return a == b
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(json_equal(value, b[key]) for key, value in a.items())
        )
    if isinstance(a, list | tuple):
        return (
            isinstance(b, list | tuple)
            and len(a) == len(b)
            and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if a is None or b is None:
        return a is b
    return type(a) is type(b) and bool(a == b)


def data_matches(data: Any, match: dict[str, Any] | None) -> bool:
    """Whether an event's ``data`` fits a wait's ``match`` (see the module docstring)."""
    if not match:
        return True
    if not isinstance(data, dict):
        return False
    for key, expected in match.items():
        if key not in data or not json_equal(data[key], expected):
            return False
    return True


__all__ = ["data_matches", "json_equal"]

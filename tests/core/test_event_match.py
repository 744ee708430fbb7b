"""The one matching rule for ``WaitEvent(match=...)`` (docs/concepts.md, "Matching events")."""

from __future__ import annotations

from typing import Any

import pytest

from replaykit.core.event_match import data_matches, json_equal

FITS: list[tuple[Any, dict[str, Any] | None]] = [
    ({"k": 1}, None),
    ("not an object", None),
    ({"k": 1}, {}),
    ({"k": 1, "other": 2}, {"k": 1}),
    ({"k": 1.0}, {"k": 1}),
    ({"k": 1}, {"k": 1.0}),
    ({"k": None}, {"k": None}),
    ({"k": True}, {"k": True}),
    ({"k": False}, {"k": False}),
    ({"k": "a"}, {"k": "a"}),
    ({"k": [1, 2.0, {"x": None}]}, {"k": [1.0, 2, {"x": None}]}),
    ({"k": {"a": 1, "b": [True]}}, {"k": {"b": [True], "a": 1.0}}),
]

MISSES: list[tuple[Any, dict[str, Any]]] = [
    ({}, {"k": None}),  # the key must be present, also for null
    ({"other": None}, {"k": None}),
    ({"k": 0}, {"k": None}),
    ({"k": ""}, {"k": None}),
    ({"k": None}, {"k": 0}),
    ({"k": 1}, {"k": True}),  # booleans are not numbers
    ({"k": True}, {"k": 1}),
    ({"k": 0}, {"k": False}),
    ({"k": False}, {"k": 0.0}),
    ({"k": "1"}, {"k": 1}),
    ({"k": "A"}, {"k": "a"}),
    ({"k": [1]}, {"k": [True]}),
    ({"k": [1, 2]}, {"k": [1]}),
    ({"k": {"a": 1}}, {"k": {"a": True}}),
    ({"k": {"a": 1}}, {"k": {"a": 1, "b": None}}),
    ({"k": {"a": 1, "b": 2}}, {"k": {"a": 1}}),  # nested objects compare whole
    ("not an object", {"k": 1}),
    (None, {"k": None}),
    ([{"k": 1}], {"k": 1}),
]


@pytest.mark.parametrize(("data", "match"), FITS)
def test_fits(data: Any, match: dict[str, Any] | None) -> None:
    assert data_matches(data, match)


@pytest.mark.parametrize(("data", "match"), MISSES)
def test_misses(data: Any, match: dict[str, Any]) -> None:
    assert not data_matches(data, match)


def test_json_equal_is_symmetric_on_the_tables() -> None:
    for data, match in [*FITS, *MISSES]:
        if isinstance(data, dict) and match:
            for key, value in match.items():
                if key in data:
                    assert json_equal(data[key], value) == json_equal(value, data[key])

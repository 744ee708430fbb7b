"""The harness itself: what it normalises, and that a difference fails with a readable diff."""

from __future__ import annotations

import pytest

from .harness import DEFAULT_START, Instance, Outcome, assert_same, normalise


def _outcome(message_id: int, result: object, *, at: float = DEFAULT_START) -> Outcome:
    events = [
        {"e": "WorkflowStarted", "workflow": "w", "instance_id": "i", "at": at},
        {
            "e": "MessageReceived",
            "step": 1,
            "name": "c",
            "message": {"channel": "c", "id": message_id},
            "at": at,
        },
        {"e": "ActivityCompleted", "step": 2, "name": "a", "result": result, "at": at},
    ]
    error = {"type": "E", "message": "m", "traceback": 'Traceback:\n  File "x.py"\nE: m\n'}
    return Outcome({"i": Instance("failed", None, error, [events])}, [])


def test_message_ids_are_renamed_in_order_and_nothing_else() -> None:
    one = normalise(_outcome(7, "x"))
    assert one == normalise(_outcome(91, "x"))
    lines = one.lines()
    assert any('"id":"<message 1>"' in line for line in lines)
    assert any('"at":0.0' in line for line in lines)
    assert '   error {"message":"m","traceback":"E: m","type":"E"}' in lines


def test_a_different_value_fails_with_a_unified_diff_naming_the_backend() -> None:
    memory, other = normalise(_outcome(1, "x")), normalise(_outcome(1, "y"))
    with pytest.raises(AssertionError) as info:
        assert_same(memory, other, "postgres")
    text = str(info.value)
    assert "memory and postgres disagree" in text
    assert "--- memory" in text and "+++ postgres" in text
    assert any(line.startswith("-") and '"result":"x"' in line for line in text.splitlines())
    assert any(line.startswith("+") and '"result":"y"' in line for line in text.splitlines())


def test_timestamps_are_compared_as_offsets_from_the_start() -> None:
    memory = normalise(_outcome(1, "x"))
    later = normalise(_outcome(1, "x", at=DEFAULT_START + 5))
    with pytest.raises(AssertionError, match=r'"at":5\.0'):
        assert_same(memory, later, "sqlite")

"""replaykit.testing refuses an input for a workflow that takes none as App does (InvalidInput,
argument ``"input"``, nothing stored); None still means "no input". App on every database:
tests/runtime/test_no_input_workflows.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from replaykit import InvalidInput
from replaykit.testing import WorkflowEnvironment
from tests.runtime.test_no_input_workflows import ni_parent, ni_recurring, ni_tick

STARTS: dict[str, Callable[[WorkflowEnvironment, Any], Any]] = {
    "start": lambda env, v: env.start(ni_tick, v, instance_id="s1"),
    "run": lambda env, v: env.run(ni_tick, v, instance_id="s1"),
    "enqueue": lambda env, v: env.enqueue("ni_q", ni_tick, v, instance_id="s1"),
    "schedule": lambda env, v: env.schedule(ni_tick, v, every=60),
}


@pytest.mark.parametrize("value", [{"x": 1}, 0, ""], ids=["dict", "zero", "empty"])
@pytest.mark.parametrize("how", sorted(STARTS))
def test_the_environment_refuses_an_input_for_a_workflow_that_takes_none(
    how: str, value: Any
) -> None:
    env = WorkflowEnvironment()
    env.queue("ni_q")
    with pytest.raises(InvalidInput, match="'ni_tick' takes no input") as info:
        STARTS[how](env, value)
    assert info.value.argument == "input"
    assert env.runs == {} and env.list_schedules() == []


def test_none_still_starts_a_workflow_that_takes_no_input_in_the_environment() -> None:
    env = WorkflowEnvironment()
    assert env.run(ni_tick) == "tick" and env.run(ni_tick, None) == "tick"


def test_a_child_given_an_input_it_does_not_take_fails_the_parents_step_in_memory() -> None:
    env = WorkflowEnvironment()
    result = env.run(ni_parent, {"x": 1}, instance_id="p")
    assert result.startswith("replaykit.core.errors.InvalidInput: ")
    assert "'ni_tick' takes no input" in result and "p/1" not in env.runs
    assert env.run(ni_parent, None, instance_id="q") == "started"


def test_recur_with_an_input_the_workflow_does_not_take_raises_at_the_yield_in_memory() -> None:
    env = WorkflowEnvironment()
    run = env.start(ni_recurring, instance_id="r")
    assert run.result().startswith("refused (input): workflow 'ni_recurring' takes no input")
    assert run.run_number == 1 and run.archived == []

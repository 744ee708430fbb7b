"""Non-determinism is detected, never tolerated, and explained (DESIGN.md sections 2 and 5.6)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from replaykit import Command, Interpreter, NonDeterminismError, Sleep, activity, workflow
from replaykit.core.history import ActivityCompleted, Event, TimerFired, WorkflowStarted
from replaykit.testing import WorkflowEnvironment, replay_check

ID = "nd-1"


@activity(name="nd_charge")
def nd_charge(ctx: Any, amount: int) -> str:
    return f"charged {amount}"


@activity(name="nd_refund")
def nd_refund(ctx: Any, amount: int) -> str:
    return f"refunded {amount}"


@workflow(name="nd_order")
def nd_order(ctx: Any, amount: int) -> Generator[Command, Any, str]:
    yield Sleep(1)
    receipt = yield nd_charge(amount)
    return receipt


def recorded(amount: int = 5) -> list[Event]:
    return WorkflowEnvironment().start(nd_order, amount, instance_id=ID).run_to_completion().history


def test_unchanged_code_replays_cleanly() -> None:
    report = replay_check(nd_order, recorded())
    assert (report.ok, report.status, report.events) == (True, "completed", 3)


def test_a_different_activity_is_reported_with_step_and_source_line() -> None:
    @workflow(name="nd_order")
    def changed(ctx: Any, amount: int) -> Generator[Command, Any, str]:
        yield Sleep(1)
        receipt = yield nd_refund(amount)  # the changed line
        return receipt

    report = replay_check(changed, recorded())
    assert not report.ok
    assert report.step == 2
    assert "step 2: history has ActivityCall 'nd_charge'" in report.error
    assert "code yielded ActivityCall 'nd_refund' at " in report.error
    line = changed.fn.__code__.co_firstlineno + 3  # the decorator line is the first
    assert f"test_nondeterminism.py:{line}" in report.error
    assert "Likely cause" in report.error


def test_changed_arguments_are_reported() -> None:
    @workflow(name="nd_order")
    def doubled(ctx: Any, amount: int) -> Generator[Command, Any, str]:
        yield Sleep(1)
        receipt = yield nd_charge(amount * 2)
        return receipt

    report = replay_check(doubled, recorded())
    assert not report.ok
    assert "ActivityCall 'nd_charge' with other arguments" in report.error


def test_a_different_kind_of_command_is_reported() -> None:
    @workflow(name="nd_order")
    def reordered(ctx: Any, amount: int) -> Generator[Command, Any, str]:
        receipt = yield nd_charge(amount)
        yield Sleep(1)
        return receipt

    with pytest.raises(NonDeterminismError) as info:
        Interpreter(reordered, instance_id=ID).feed(recorded(), replaying=True)
    err = info.value
    assert (err.instance_id, err.step) == (ID, 1)
    assert err.expected == "Sleep"
    assert err.actual == "ActivityCall 'nd_charge'"
    assert err.location.endswith(f":{reordered.fn.__code__.co_firstlineno + 2}")


def test_a_removed_yield_is_reported_as_never_yielded() -> None:
    @workflow(name="nd_order")
    def shorter(ctx: Any, amount: int) -> Generator[Command, Any, str]:
        yield Sleep(1)
        return "no charge"

    report = replay_check(shorter, recorded())
    assert not report.ok
    assert "never yielded step 2 (the code already completed)" in report.error


def test_an_added_yield_at_the_end_is_not_an_error_but_a_new_command() -> None:
    @workflow(name="nd_order")
    def longer(ctx: Any, amount: int) -> Generator[Command, Any, str]:
        yield Sleep(1)
        receipt = yield nd_charge(amount)
        yield Sleep(2)
        return receipt

    history = recorded()
    decision = Interpreter(longer, instance_id=ID).feed(history, replaying=True)
    assert [(s.step, s.command) for s in decision.commands] == [(3, Sleep(2))]


def test_two_outcomes_for_one_step_are_reported() -> None:
    history = [*recorded()[:2], TimerFired(step=1)]
    with pytest.raises(NonDeterminismError, match="two for one step"):
        Interpreter(nd_order, instance_id=ID).feed(history, replaying=True)


def test_an_outcome_for_a_future_step_names_where_the_code_waits() -> None:
    history = [WorkflowStarted(workflow="nd_order", instance_id=ID, input=5)]
    history.append(ActivityCompleted(step=2, name="nd_charge", result="x"))
    with pytest.raises(NonDeterminismError, match=r"waiting at step 1 \(Sleep\)"):
        Interpreter(nd_order, instance_id=ID).feed(history, replaying=True)


def test_a_broken_interpreter_stays_broken() -> None:
    interp = Interpreter(nd_order, instance_id=ID)
    bad = [*recorded()[:1], ActivityCompleted(step=1, name="nd_charge")]
    with pytest.raises(NonDeterminismError) as first:
        interp.feed(bad)
    with pytest.raises(NonDeterminismError) as second:
        interp.feed([TimerFired(step=1)])
    assert second.value is first.value


def test_the_typed_yield_from_form_reports_the_user_line_not_the_library() -> None:
    @workflow(name="nd_order")
    def typed(ctx: Any, amount: int) -> Generator[Command, Any, str]:
        yield Sleep(1)
        receipt = yield from nd_refund(amount)
        return receipt

    report = replay_check(typed, recorded())
    assert f"test_nondeterminism.py:{typed.fn.__code__.co_firstlineno + 3}" in report.error


def test_raise_if_failed_raises_non_determinism_error() -> None:
    @workflow(name="nd_order")
    def changed(ctx: Any, amount: int) -> Generator[Command, Any, str]:
        receipt = yield nd_refund(amount)
        return receipt

    with pytest.raises(NonDeterminismError) as info:
        replay_check(changed, recorded()).raise_if_failed()
    assert info.value.step == 1

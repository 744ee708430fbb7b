"""Patched / DeprecatePatch in the interpreter and the planner: made-up history in, decision out.

The rule: a ``Patched`` yielded where history goes on is decided by the next event (its marker:
true; anything else: false, the step is given back, and that event applies to what the code yields
next). Where history ends, the shell decides: taken (marker recorded) unless the store holds a
timer, wait or child at that step or later, which older code issued there.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from replaykit import (
    Command,
    DeprecatePatch,
    NonDeterminismError,
    Patched,
    Registry,
    Sleep,
    WaitEvent,
    WorkflowCancelled,
    activity,
    workflow,
)
from replaykit.core.decisions import ScheduledCommand
from replaykit.core.effects import Planner, Record, SkipMarker
from replaykit.core.history import (
    ActivityCompleted,
    CancelRequested,
    EventData,
    EventReceived,
    TimerFired,
    ValueRecorded,
    WorkflowStarted,
)
from replaykit.core.interpreter import Interpreter

ID = "p-1"


@activity(name="pt_reserve")
def pt_reserve(ctx: Any, sku: str) -> str:
    return f"rsv-{sku}"


@activity(name="pt_charge")
def pt_charge(ctx: Any, amount: int) -> str:
    return f"paid-{amount}"


@workflow(name="pt_old")
def old_order(ctx: Any) -> Generator[Command, Any, list[str]]:
    reservation = yield pt_reserve("book")
    yield Sleep(60)
    receipt = yield pt_charge(10)
    return [reservation, receipt]


@workflow(name="pt_new")
def new_order(ctx: Any) -> Generator[Command, Any, list[str]]:
    if (yield Patched("charge-first")):
        receipt = yield pt_charge(10)
        reservation = yield pt_reserve("book")
    else:
        reservation = yield pt_reserve("book")
    yield Sleep(60)
    if not (yield Patched("charge-first")):  # a second point of the same patch
        receipt = yield pt_charge(10)
    return [reservation, receipt]


@workflow(name="pt_deprecated")
def deprecated_order(ctx: Any) -> Generator[Command, Any, list[str]]:
    yield DeprecatePatch("charge-first")
    receipt = yield pt_charge(10)
    reservation = yield pt_reserve("book")
    yield Sleep(60)
    yield DeprecatePatch("charge-first")  # decided at the first one: takes no step
    return [reservation, receipt]


def started(name: str) -> WorkflowStarted:
    return WorkflowStarted(workflow=name, instance_id=ID)


def marker(step: int, patch_id: str = "charge-first") -> ValueRecorded:
    return ValueRecorded(step=step, kind="Patched", name=patch_id, value=True)


def done(step: int, name: str, result: str) -> ActivityCompleted:
    return ActivityCompleted(step=step, name=name, result=result)


OLD_HISTORY = [
    started("pt_new"),
    done(1, "pt_reserve", "rsv-book"),
    TimerFired(step=2),
    done(3, "pt_charge", "paid-10"),
]
NEW_HISTORY = [
    started("pt_new"),
    marker(1),
    done(2, "pt_charge", "paid-10"),
    done(3, "pt_reserve", "rsv-book"),
    TimerFired(step=4),
]


def new(wf: Any) -> Interpreter:
    return Interpreter(wf, instance_id=ID)


def test_a_patch_yielded_where_history_ends_is_issued_undecided() -> None:
    interp = new(new_order)
    [scheduled] = interp.feed([started("pt_new")]).commands
    assert scheduled == ScheduledCommand(step=1, command=Patched("charge-first"))
    assert interp.undecided_marker() == scheduled


def test_the_marker_makes_patched_true_and_takes_its_step() -> None:
    decision = new(new_order).feed(NEW_HISTORY, replaying=True)
    assert decision.status == "completed"
    assert decision.result == ["rsv-book", "paid-10"]


def test_history_from_before_the_patch_makes_patched_false_and_keeps_the_old_step_numbers() -> None:
    decision = new(new_order).feed(OLD_HISTORY, replaying=True)
    assert decision.status == "completed"
    assert decision.result == ["rsv-book", "paid-10"]


def test_an_old_instance_parked_between_two_points_of_a_patch_stays_on_the_old_path() -> None:
    interp = new(new_order)
    [sleep] = interp.feed(OLD_HISTORY[:2], replaying=True).commands
    assert sleep == ScheduledCommand(step=2, command=Sleep(60))
    [charge] = interp.feed([TimerFired(step=2)]).commands  # the second point: false at once
    assert (charge.step, charge.command.identity()[1]) == (3, "pt_charge")
    assert interp.feed([done(3, "pt_charge", "paid-10")]).result == ["rsv-book", "paid-10"]


def test_a_patch_is_decided_once_per_run_and_its_later_points_take_no_step() -> None:
    interp = new(new_order)
    interp.feed(NEW_HISTORY, replaying=True)
    assert interp.finished  # the second point took no step and recorded nothing


def test_the_shell_taking_no_marker_makes_patched_false_and_gives_the_step_back() -> None:
    interp = new(new_order)
    interp.feed([started("pt_new")])
    [reserve] = interp.skip_marker(1).commands
    assert reserve.step == 1
    assert reserve.command.identity()[1] == "pt_reserve"
    assert interp.undecided_marker() is None


def test_skipping_a_step_that_no_longer_waits_for_a_marker_changes_nothing() -> None:
    interp = new(new_order)
    interp.feed([started("pt_new"), marker(1)])
    assert interp.skip_marker(1).commands == ()
    assert interp.is_outstanding(2)


def test_a_scheduled_patch_whose_step_went_to_another_command_is_not_outstanding() -> None:
    interp = new(new_order)
    [patch] = interp.feed([started("pt_new")]).commands
    interp.skip_marker(1)
    assert interp.is_outstanding(1)
    assert not interp.is_outstanding(1, patch.command)


def test_a_cancel_right_after_an_undecided_patch_decides_it_false() -> None:
    @workflow(name="pt_cancel")
    def cancelled(ctx: Any) -> Generator[Command, Any, str]:
        try:
            if (yield Patched("p")):
                yield Sleep(1)
                return "new"
            yield WaitEvent("go")
        except WorkflowCancelled:
            return "old path cancelled"
        return "old"

    decision = new(cancelled).feed([started("pt_cancel"), CancelRequested(reason="x")])
    assert decision.result == "old path cancelled"


def test_patches_at_one_step_are_decided_in_turn_by_the_same_event() -> None:
    @workflow(name="pt_two")
    def two(ctx: Any) -> Generator[Command, Any, list[bool]]:
        b = yield Patched("b")
        a = yield Patched("a")
        yield Sleep(1)
        return [b, a]

    history = [started("pt_two"), marker(1, "a"), TimerFired(step=2)]
    assert new(two).feed(history).result == [False, True]


def test_an_event_of_the_patch_step_after_the_yield_is_given_to_the_old_branch() -> None:
    @workflow(name="pt_wait")
    def waits(ctx: Any) -> Generator[Command, Any, str]:
        if (yield Patched("p")):
            return "new"
        event = yield WaitEvent("go")
        return str(event.data)

    event = EventData(type="go", data="old")
    history = [started("pt_wait"), EventReceived(step=1, name="go", event=event)]
    assert new(waits).feed(history).result == "old"


def test_patched_is_typed_with_yield_from() -> None:
    @workflow(name="pt_typed")
    def typed(ctx: Any) -> Generator[Command, Any, bool]:
        taken: bool = yield from Patched("p")
        return taken

    assert new(typed).feed([started("pt_typed"), marker(1, "p")]).result is True


def test_a_patch_needs_an_id() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        Patched("")


def test_a_marker_where_the_code_no_longer_has_the_patch_is_a_mismatch() -> None:
    with pytest.raises(NonDeterminismError, match="history has Patched 'charge-first'"):
        new(old_order).feed(NEW_HISTORY, replaying=True)


def test_a_marker_of_another_patch_is_a_mismatch() -> None:
    history = [started("pt_new"), marker(1, "other")]
    with pytest.raises(NonDeterminismError, match="step 1"):
        new(new_order).feed(history, replaying=True)


# -- DeprecatePatch -----------------------------------------------------------------------------


def test_deprecate_patch_takes_the_marker_of_an_instance_that_took_the_patch() -> None:
    decision = new(deprecated_order).feed(NEW_HISTORY, replaying=True)
    assert decision.result == ["rsv-book", "paid-10"]


def test_deprecate_patch_consumes_no_step_without_a_marker() -> None:
    history = [
        started("pt_deprecated"),
        done(1, "pt_charge", "paid-10"),
        done(2, "pt_reserve", "rsv-book"),
        TimerFired(step=3),
    ]
    assert new(deprecated_order).feed(history, replaying=True).result == ["rsv-book", "paid-10"]


def test_deprecate_patch_where_history_ends_is_skipped_by_the_shell() -> None:
    interp = new(deprecated_order)
    [scheduled] = interp.feed([started("pt_deprecated")]).commands
    assert scheduled.command == DeprecatePatch("charge-first")
    [charge] = interp.skip_marker(1).commands
    assert (charge.step, charge.command.identity()[1]) == (1, "pt_charge")


# -- the planner --------------------------------------------------------------------------------


class Values:
    def uuid(self) -> str:
        return "u"

    def random(self) -> float:
        return 0.5

    def side_effect(self, fn: Any) -> Any:
        return fn()


class Holds:
    def __init__(self, *steps: int) -> None:
        self.steps = steps

    def registered_from(self, step: int) -> bool:
        return any(s >= step for s in self.steps)


def plan(command: Command, step: int, *stored: int) -> tuple[Any, ...]:
    planner = Planner("pt_new", ID, Registry(), Values(), stored=Holds(*stored))
    return planner.plan(ScheduledCommand(step=step, command=command), 100.0)


def test_an_undecided_patch_is_taken_and_its_marker_recorded_when_nothing_is_stored() -> None:
    assert plan(Patched("charge-first"), 3) == (Record(event=marker(3)),)


def test_registrations_only_before_the_patch_step_do_not_stop_the_patch() -> None:
    assert plan(Patched("charge-first"), 3, 1, 2) == (Record(event=marker(3)),)


def test_an_undecided_patch_is_not_taken_where_older_code_left_something_waiting() -> None:
    assert plan(Patched("charge-first"), 3, 3) == (SkipMarker(step=3),)
    assert plan(Patched("charge-first"), 3, 5) == (SkipMarker(step=3),)  # e.g. an Any's members


def test_an_undecided_deprecate_patch_records_nothing() -> None:
    assert plan(DeprecatePatch("charge-first"), 3) == (SkipMarker(step=3),)

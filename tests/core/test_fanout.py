"""All / Any: members get their own step ids; All waits for everyone; Any can cancel losers."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from replaykit import (
    ActivityError,
    All,
    AnyOf,
    Command,
    EventTimeout,
    Interpreter,
    InvalidCommand,
    Now,
    Sleep,
    WaitEvent,
    activity,
    workflow,
)
from replaykit.core.commands import Compensate
from replaykit.core.history import (
    ActivityCompleted,
    ActivityFailed,
    ErrorInfo,
    EventData,
    EventReceived,
    EventTimedOut,
    TimerFired,
    WorkflowStarted,
)
from replaykit.testing import WorkflowEnvironment

ID = "fo-1"
DOWN = ErrorInfo(type="builtins.OSError", message="down", retryable=False)


@activity(name="fo_undo")
def fo_undo(ctx: Any, n: int) -> None:
    return None


@activity(name="fo_get", compensate=fo_undo)
def fo_get(ctx: Any, n: int) -> int:
    return n * 10


@workflow(name="fo_all")
def fo_all(ctx: Any) -> Generator[Command, Any, Any]:
    values = yield All([fo_get(1), fo_get(2), Sleep(5)])
    after = yield Sleep(1)
    return [values, after]


@workflow(name="fo_settled")
def fo_settled(ctx: Any) -> Generator[Command, Any, Any]:
    values = yield All([fo_get(1), fo_get(2)], settled=True)
    return [repr(v) if isinstance(v, BaseException) else v for v in values]


@workflow(name="fo_all_catch")
def fo_all_catch(ctx: Any) -> Generator[Command, Any, str]:
    try:
        yield All([fo_get(1), fo_get(2), fo_get(3)])
    except ActivityError as exc:
        return f"step {exc.step}: {exc.message}"
    return "no failure"


def fo_any_wf(cancel_losers: bool) -> Any:
    @workflow(name=f"fo_any_{cancel_losers}")
    def fo_any(ctx: Any) -> Generator[Command, Any, Any]:
        members = [WaitEvent("paid", timeout=100), Sleep(50), fo_get(7)]
        index, value = yield AnyOf(members, cancel_losers=cancel_losers)
        if isinstance(value, EventData):
            value = value.data
        yield Sleep(1)
        return [index, value]

    return fo_any


def started(name: str) -> WorkflowStarted:
    return WorkflowStarted(workflow=name, instance_id=ID)


def got(step: int, n: int) -> ActivityCompleted:
    return ActivityCompleted(step=step, name="fo_get", result=n)


def fail(step: int) -> ActivityFailed:
    return ActivityFailed(step=step, name="fo_get", error=DOWN)


def feed(wf: Any, *events: Any) -> Any:
    return Interpreter(wf, instance_id=ID).feed(list(events))


# -- All ------------------------------------------------------------------------------------------


def test_all_issues_every_member_at_once_with_ids_after_the_group() -> None:
    decision = feed(fo_all, started("fo_all"))
    assert [(s.step, s.group) for s in decision.commands] == [(2, 1), (3, 1), (4, 1)]


def test_all_gives_member_results_in_member_order_and_later_ids_follow_the_members() -> None:
    decision = feed(fo_all, started("fo_all"), TimerFired(step=4), got(3, 20), got(2, 10))
    [after] = decision.commands
    assert (after.step, after.command) == (5, Sleep(1))
    decision = feed(
        fo_all, started("fo_all"), got(3, 20), got(2, 10), TimerFired(step=4), TimerFired(step=5)
    )
    assert decision.result == [[10, 20, None], None]


def test_all_waits_for_every_member_before_raising() -> None:
    decision = feed(fo_all_catch, started("fo_all_catch"), fail(3))
    assert decision.status == "running"
    assert decision.commands != ()


def test_all_raises_the_first_failure_by_member_order() -> None:
    decision = feed(fo_all_catch, started("fo_all_catch"), fail(4), got(2, 1), fail(3))
    assert decision.result == "step 3: down"


def test_all_settled_returns_failures_in_place_instead_of_raising() -> None:
    decision = feed(fo_settled, started("fo_settled"), fail(2), got(3, 20))
    assert decision.status == "completed"
    assert decision.result[1] == 20
    assert decision.result[0].startswith("OSError(")


def test_all_of_nothing_returns_an_empty_list_at_once() -> None:
    @workflow(name="fo_empty_all")
    def empty(ctx: Any) -> Generator[Command, Any, Any]:
        values = yield All([])
        return values

    assert feed(empty, started("fo_empty_all")).result == []


def test_a_member_that_cannot_be_in_a_group_is_invalid_command() -> None:
    @workflow(name="fo_bad_member")
    def bad(ctx: Any) -> Generator[Command, Any, Any]:
        try:
            yield All([Now()])
        except InvalidCommand as exc:
            return str(exc)
        return "accepted"

    assert "members must be" in feed(bad, started("fo_bad_member")).result


def test_a_failed_all_compensates_every_member_that_completed() -> None:
    @workflow(name="fo_all_saga")
    def saga(ctx: Any) -> Generator[Command, Any, Any]:
        yield All([fo_get(1), fo_get(2), fo_get(3)])

    decision = feed(saga, started("fo_all_saga"), got(2, 10), fail(3), got(4, 30))
    [comp] = decision.commands
    assert isinstance(comp.command, Compensate)
    assert comp.command.of_step == 4


# -- Any ------------------------------------------------------------------------------------------


def test_any_returns_the_index_and_value_of_the_first_member_to_finish() -> None:
    wf = fo_any_wf(True)
    decision = feed(wf, started(wf.name), got(4, 70), TimerFired(step=5))
    assert decision.result == [2, 70]


def test_any_cancels_the_timers_and_waits_of_the_losers() -> None:
    wf = fo_any_wf(True)
    interp = Interpreter(wf, instance_id=ID)
    interp.feed([started(wf.name)])
    decision = interp.feed([got(4, 70)])
    assert decision.cancelled == (2, 3)
    assert [s.step for s in interp.outstanding()] == [5]


def test_any_without_cancel_losers_leaves_the_losers_alone() -> None:
    wf = fo_any_wf(False)
    interp = Interpreter(wf, instance_id=ID)
    interp.feed([started(wf.name)])
    assert interp.feed([got(4, 70)]).cancelled == ()


def test_a_late_outcome_of_a_loser_is_accepted_and_ignored() -> None:
    wf = fo_any_wf(False)
    decision = feed(wf, started(wf.name), TimerFired(step=3), got(4, 70), TimerFired(step=5))
    assert decision.result == [1, None]


def test_any_raises_when_the_first_member_to_finish_failed() -> None:
    wf = fo_any_wf(True)
    decision = feed(wf, started(wf.name), EventTimedOut(step=2, name="paid"))
    assert decision.status == "failed"
    assert decision.error is not None and decision.error.type.endswith("EventTimeout")


def test_any_of_nothing_is_invalid_command() -> None:
    @workflow(name="fo_empty_any")
    def empty(ctx: Any) -> Generator[Command, Any, Any]:
        try:
            yield AnyOf([])
        except InvalidCommand:
            return "rejected"
        return "accepted"

    assert feed(empty, started("fo_empty_any")).result == "rejected"


def test_any_in_the_environment_takes_the_event_and_drops_the_timeout() -> None:
    wf = fo_any_wf(True)
    env = WorkflowEnvironment(activities={"fo_get": _never_returns_fast})
    run = env.start(wf)
    run.send_event("paid", {"amount": 5})
    assert run.result() == [0, {"amount": 5}]
    kinds = [type(e).__name__ for e in run.history]
    assert "EventTimedOut" not in kinds and "TimerFired" in kinds


def _never_returns_fast(ctx: Any, n: int) -> int:
    raise OSError("slow service")


def test_any_in_the_environment_times_out_with_event_timeout() -> None:
    @workflow(name="fo_any_timeout")
    def timeout(ctx: Any) -> Generator[Command, Any, str]:
        try:
            yield AnyOf([WaitEvent("paid", timeout=10), WaitEvent("refused", timeout=20)])
        except EventTimeout as exc:
            return f"timed out waiting for {exc.waited_for}"
        return "event"

    assert WorkflowEnvironment().run(timeout) == "timed out waiting for paid"


def test_all_over_events_in_the_environment_collects_every_event() -> None:
    @workflow(name="fo_all_events")
    def events(ctx: Any) -> Generator[Command, Any, Any]:
        got = yield All([WaitEvent("a"), WaitEvent("b")])
        return [e.data for e in got]

    env = WorkflowEnvironment()
    run = env.start(events)
    run.send_event("b", 2)
    assert not run.finished
    run.send_event("a", 1)
    assert run.result() == [1, 2]
    assert [e.step for e in run.history if isinstance(e, EventReceived)] == [3, 2]

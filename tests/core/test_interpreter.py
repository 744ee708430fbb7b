"""The interpreter as a table: a made-up history in, a decision out; one behaviour per test."""

from __future__ import annotations

import logging
from collections.abc import Generator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from replaykit import (
    ActivityCall,
    Command,
    EventTimeout,
    InvalidCommand,
    NonDeterminismError,
    Now,
    Recur,
    Sleep,
    WaitEvent,
    WorkflowCancelled,
    activity,
    workflow,
)
from replaykit.core.history import (
    ActivityCompleted,
    CancelRequested,
    EventData,
    EventReceived,
    EventTimedOut,
    TimerFired,
    ValueRecorded,
    WorkflowStarted,
)
from replaykit.core.interpreter import Interpreter, replay

ID = "i-1"


class Point(msgspec.Struct):
    x: int
    y: int


@activity(name="it_add")
def it_add(ctx: Any, a: int, b: int) -> int:
    return a + b


@activity(name="it_point")
def it_point(ctx: Any, x: int) -> Point:
    return Point(x, x)


@workflow(name="it_two_adds")
def two_adds(ctx: Any, n: int) -> Generator[Command, Any, int]:
    a = yield it_add(n, 1)
    b = yield it_add(a, 1)
    return b


@workflow(name="it_sleepy")
def sleepy(ctx: Any) -> Generator[Command, Any, str]:
    yield Sleep(60)
    return "awake"


def started(name: str, input: Any = None) -> WorkflowStarted:
    return WorkflowStarted(workflow=name, instance_id=ID, input=input)


def done(step: int, result: Any, name: str = "it_add") -> ActivityCompleted:
    return ActivityCompleted(step=step, name=name, result=result)


def new(wf: Any) -> Interpreter:
    return Interpreter(wf, instance_id=ID)


def test_start_issues_the_first_command_as_step_1() -> None:
    decision = new(two_adds).feed([started("it_two_adds", 5)])
    assert decision.status == "running"
    [scheduled] = decision.commands
    assert scheduled.step == 1
    assert isinstance(scheduled.command, ActivityCall)
    assert (scheduled.command.name, scheduled.command.args) == ("it_add", (5, 1))


def test_a_completed_activity_sends_its_result_and_issues_the_next_step() -> None:
    interp = new(two_adds)
    interp.feed([started("it_two_adds", 5)])
    [scheduled] = interp.feed([done(1, 6)]).commands
    assert scheduled.step == 2
    assert scheduled.command.args == (6, 1)  # type: ignore[attr-defined]


def test_returning_completes_with_the_result() -> None:
    decision = new(two_adds).feed([started("it_two_adds", 5), done(1, 6), done(2, 7)])
    assert decision.status == "completed"
    assert decision.result == 7
    assert decision.commands == ()


def test_full_replay_returns_only_unresolved_commands() -> None:
    decision = new(two_adds).feed([started("it_two_adds", 5), done(1, 6)], replaying=True)
    assert [s.step for s in decision.commands] == [2]


def test_activity_result_is_decoded_to_the_annotated_type() -> None:
    @workflow(name="it_points")
    def points(ctx: Any) -> Generator[Command, Any, int]:
        p = yield it_point(3)
        assert isinstance(p, Point)
        return p.x + p.y

    history = [started("it_points"), done(1, {"x": 3, "y": 4}, name="it_point")]
    assert new(points).feed(history).result == 7


def test_a_result_that_does_not_match_the_type_is_thrown_as_invalid_input() -> None:
    @workflow(name="it_bad_point")
    def bad_point(ctx: Any) -> Generator[Command, Any, str]:
        try:
            yield it_point(3)
        except ValueError as exc:
            return type(exc).__name__
        return "no error"

    history = [started("it_bad_point"), done(1, "not a point", name="it_point")]
    assert new(bad_point).feed(history).result == "InvalidInput"


def test_workflow_input_is_decoded_to_the_annotated_type() -> None:
    seen: list[Any] = []

    @workflow(name="it_struct_input")
    def struct_input(ctx: Any, p: Point) -> Generator[Command, Any, int]:
        seen.append(p)
        yield Sleep(1)
        return p.x

    new(struct_input).feed([started("it_struct_input", {"x": 1, "y": 2})])
    assert seen == [Point(1, 2)]


def test_input_that_does_not_match_fails_the_workflow_with_invalid_input() -> None:
    decision = new(two_adds).feed([started("it_two_adds", "five")])
    assert decision.status == "failed"
    assert decision.error is not None
    assert decision.error.type.endswith("InvalidInput")


def test_an_exception_in_the_workflow_is_returned_as_a_failed_decision() -> None:
    @workflow(name="it_raises")
    def raises(ctx: Any) -> Generator[Command, Any, None]:
        yield Sleep(1)
        raise KeyError("missing")

    decision = new(raises).feed([started("it_raises"), TimerFired(step=1)])
    assert decision.status == "failed"
    assert decision.error is not None
    assert decision.error.type == "builtins.KeyError"
    assert "missing" in decision.error.message


def test_a_result_that_cannot_be_encoded_fails_the_workflow() -> None:
    @workflow(name="it_unencodable")
    def unencodable(ctx: Any) -> Generator[Command, Any, object]:
        yield Sleep(1)
        return object()

    decision = new(unencodable).feed([started("it_unencodable"), TimerFired(step=1)])
    assert decision.status == "failed"
    assert decision.error is not None and decision.error.type.endswith("InvalidInput")


def test_yielding_a_non_command_throws_invalid_command_into_the_workflow() -> None:
    @workflow(name="it_yields_junk")
    def yields_junk(ctx: Any) -> Generator[Any, Any, str]:
        try:
            yield 42
        except InvalidCommand:
            return "caught"
        return "not caught"

    assert new(yields_junk).feed([started("it_yields_junk")]).result == "caught"


def test_sleep_issues_a_timer_and_timer_fired_resumes() -> None:
    interp = new(sleepy)
    [scheduled] = interp.feed([started("it_sleepy")]).commands
    assert scheduled.command == Sleep(60)
    assert interp.feed([TimerFired(step=1)]).result == "awake"


def test_now_is_returned_as_an_aware_utc_datetime() -> None:
    @workflow(name="it_now")
    def now(ctx: Any) -> Generator[Command, Any, str]:
        t = yield Now()
        assert t.tzinfo is not None
        return str(t.isoformat())

    history = [started("it_now"), ValueRecorded(step=1, kind="Now", value=0.0)]
    expected = datetime(1970, 1, 1, tzinfo=UTC).isoformat()
    assert new(now).feed(history).result == expected


def test_event_received_sends_the_event_data() -> None:
    @workflow(name="it_wait")
    def wait(ctx: Any) -> Generator[Command, Any, Any]:
        ev = yield WaitEvent("paid", timeout=10)
        return ev.data

    event = EventData(type="paid", data={"amount": 3})
    history = [started("it_wait"), EventReceived(step=1, name="paid", event=event)]
    assert new(wait).feed(history).result == {"amount": 3}


def test_event_timed_out_throws_event_timeout_which_is_a_timeout_error() -> None:
    @workflow(name="it_wait_timeout")
    def wait_timeout(ctx: Any) -> Generator[Command, Any, str]:
        try:
            yield WaitEvent("paid", timeout=10)
        except TimeoutError as exc:
            assert isinstance(exc, EventTimeout)
            return f"timeout at step {exc.step}"
        return "event"

    history = [started("it_wait_timeout"), EventTimedOut(step=1, name="paid")]
    assert new(wait_timeout).feed(history).result == "timeout at step 1"


def test_cancel_throws_workflow_cancelled_at_the_current_yield() -> None:
    decision = new(sleepy).feed([started("it_sleepy"), CancelRequested(reason="user")])
    assert decision.status == "cancelled"
    assert decision.error is not None and decision.error.type.endswith("WorkflowCancelled")


def test_cancel_drops_the_timer_the_workflow_waited_on() -> None:
    interp = new(sleepy)
    interp.feed([started("it_sleepy")])
    assert interp.feed([CancelRequested()]).cancelled == (1,)


def test_a_workflow_may_catch_cancellation_and_complete() -> None:
    @workflow(name="it_catches_cancel")
    def catches(ctx: Any) -> Generator[Command, Any, str]:
        try:
            yield Sleep(60)
        except WorkflowCancelled as exc:
            return f"cleaned up ({exc.reason})"
        return "slept"

    decision = new(catches).feed([started("it_catches_cancel"), CancelRequested(reason="r")])
    assert (decision.status, decision.result) == ("completed", "cleaned up (r)")


def test_cancel_after_the_workflow_finished_is_ignored() -> None:
    history = [started("it_sleepy"), TimerFired(step=1), CancelRequested()]
    assert new(sleepy).feed(history).status == "completed"


def test_recur_ends_the_run_with_the_next_input() -> None:
    @workflow(name="it_recur")
    def recur(ctx: Any, n: int) -> Generator[Command, Any, int]:
        yield Recur(n + 1)
        return n

    decision = new(recur).feed([started("it_recur", 1)])
    assert (decision.status, decision.recur_input) == ("continued", 2)


def test_retries_do_not_consume_step_numbers() -> None:
    from replaykit.core.history import ActivityFailed, ErrorInfo, RetryTimerFired

    err = ErrorInfo(type="builtins.OSError", message="flaky")
    history = [
        started("it_two_adds", 1),
        ActivityFailed(step=1, name="it_add", error=err, attempt=1),
        RetryTimerFired(step=1, name="it_add", attempt=2),
        done(1, 2),
    ]
    [scheduled] = new(two_adds).feed(history).commands
    assert scheduled.step == 2


def test_is_replaying_is_true_until_the_last_replayed_event() -> None:
    seen: list[bool] = []

    @workflow(name="it_replaying")
    def replaying(ctx: Any) -> Generator[Command, Any, None]:
        seen.append(ctx.is_replaying)
        yield Sleep(1)
        seen.append(ctx.is_replaying)
        yield Sleep(1)
        seen.append(ctx.is_replaying)

    history = [started("it_replaying"), TimerFired(step=1), TimerFired(step=2)]
    new(replaying).feed(history, replaying=True)
    assert seen == [True, True, False]


def test_live_feeding_is_never_replaying() -> None:
    seen: list[bool] = []

    @workflow(name="it_live")
    def live(ctx: Any) -> Generator[Command, Any, None]:
        seen.append(ctx.is_replaying)
        yield Sleep(1)
        seen.append(ctx.is_replaying)

    interp = new(live)
    interp.feed([started("it_live")])
    interp.feed([TimerFired(step=1)])
    assert seen == [False, False]


def test_ctx_log_is_quiet_during_replay(caplog: pytest.LogCaptureFixture) -> None:
    @workflow(name="it_logs")
    def logs(ctx: Any) -> Generator[Command, Any, None]:
        ctx.log.warning("step %s", ctx.step)
        yield Sleep(1)
        ctx.log.warning("step %s", ctx.step)
        yield Sleep(1)

    with caplog.at_level(logging.WARNING):
        new(logs).feed([started("it_logs"), TimerFired(step=1)], replaying=True)
    assert [r.getMessage() for r in caplog.records] == ["step 2"]
    assert caplog.records[0].instance_id == ID  # type: ignore[attr-defined]


def test_the_fast_path_does_not_rerun_the_generator() -> None:
    runs: list[int] = []

    @workflow(name="it_counted")
    def counted(ctx: Any) -> Generator[Command, Any, None]:
        runs.append(1)
        yield Sleep(1)
        yield Sleep(1)

    interp = new(counted)
    for event in [started("it_counted"), TimerFired(step=1), TimerFired(step=2)]:
        interp.feed([event])
    assert runs == [1]
    assert interp.finished


def test_a_second_workflow_started_is_non_determinism() -> None:
    with pytest.raises(NonDeterminismError, match="second WorkflowStarted"):
        new(sleepy).feed([started("it_sleepy"), started("it_sleepy")])


def test_an_unknown_event_object_is_rejected() -> None:
    with pytest.raises(InvalidCommand, match="not a history event"):
        new(sleepy).feed([object()])  # type: ignore[list-item]


def test_replay_helper_takes_the_instance_id_from_history() -> None:
    interp, decision = replay(sleepy, [started("it_sleepy"), TimerFired(step=1)])
    assert interp.instance_id == ID
    assert decision.result == "awake"

"""Retries are durable timers decided by the core; compensations run in reverse on failure."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from replaykit import (
    ActivityCall,
    ActivityError,
    Command,
    Interpreter,
    NonDeterminismError,
    RetryPolicy,
    TerminalError,
    WaitEvent,
    activity,
    workflow,
)
from replaykit.core.commands import Compensate, RetryTimer
from replaykit.core.history import (
    ActivityCompleted,
    ActivityFailed,
    CompensationCompleted,
    CompensationFailed,
    ErrorInfo,
    RetryTimerFired,
    WorkflowStarted,
)
from replaykit.testing import WorkflowEnvironment, raise_as

ID = "rs-1"
OS_ERROR = ErrorInfo(type="builtins.OSError", message="network down")
POLICY = RetryPolicy(max_attempts=3, initial_interval=2.0, backoff_coefficient=3.0)


@activity(name="rs_flaky", retry=POLICY)
def rs_flaky(ctx: Any, x: int) -> int:
    return x


@activity(name="rs_strict", retry=RetryPolicy(non_retryable=("ValueError",)))
def rs_strict(ctx: Any) -> None:
    return None


@activity(name="rs_release", retry=RetryPolicy(max_attempts=2, initial_interval=1.0))
def rs_release(ctx: Any, sku: str) -> str:
    return f"released {sku}"


@activity(name="rs_reserve", compensate=rs_release)
def rs_reserve(ctx: Any, sku: str) -> str:
    return f"reserved {sku}"


@workflow(name="rs_once")
def rs_once(ctx: Any) -> Generator[Command, Any, Any]:
    try:
        value = yield rs_flaky(1)
    except ActivityError as exc:
        return f"gave up after {exc.attempts} attempts: {exc.message}"
    return value


@workflow(name="rs_trip")
def rs_trip(ctx: Any) -> Generator[Command, Any, str]:
    yield rs_reserve("a")
    yield rs_reserve("b")
    yield rs_flaky(0)
    return "done"


def started(name: str) -> WorkflowStarted:
    return WorkflowStarted(workflow=name, instance_id=ID)


def failed(step: int, attempt: int, name: str = "rs_flaky", error: ErrorInfo = OS_ERROR) -> Any:
    return ActivityFailed(step=step, name=name, error=error, attempt=attempt)


def feed(wf: Any, *events: Any) -> Any:
    return Interpreter(wf, instance_id=ID).feed(list(events))


# -- retries --------------------------------------------------------------------------------------


def test_a_failed_attempt_schedules_a_durable_retry_timer_for_the_same_step() -> None:
    [scheduled] = feed(rs_once, started("rs_once"), failed(1, 1)).commands
    assert scheduled.step == 1
    assert scheduled.attempt == 2
    assert scheduled.command == RetryTimer(seconds=2.0, attempt=2, name="rs_flaky")


def test_the_retry_timer_reissues_the_activity_with_the_next_attempt() -> None:
    timer = RetryTimerFired(step=1, name="rs_flaky", attempt=2)
    [scheduled] = feed(rs_once, started("rs_once"), failed(1, 1), timer).commands
    assert isinstance(scheduled.command, ActivityCall)
    assert (scheduled.step, scheduled.attempt) == (1, 2)


def test_backoff_grows_between_retries() -> None:
    events = [started("rs_once"), failed(1, 1)]
    events += [RetryTimerFired(step=1, name="rs_flaky", attempt=2), failed(1, 2)]
    [scheduled] = feed(rs_once, *events).commands
    assert scheduled.command == RetryTimer(seconds=6.0, attempt=3, name="rs_flaky")


def test_after_the_last_attempt_the_workflow_gets_activity_error() -> None:
    events = [started("rs_once"), failed(1, 1)]
    for attempt in (2, 3):
        events += [RetryTimerFired(step=1, name="rs_flaky", attempt=attempt), failed(1, attempt)]
    decision = feed(rs_once, *events)
    assert decision.result == "gave up after 3 attempts: network down"


def test_an_error_that_is_not_retryable_fails_at_once() -> None:
    terminal = ErrorInfo(type="replaykit.core.errors.TerminalError", message="no", retryable=False)
    assert feed(rs_once, started("rs_once"), failed(1, 1, error=terminal)).result.startswith(
        "gave up after 1 attempts"
    )


def test_non_retryable_error_types_fail_at_once() -> None:
    @workflow(name="rs_strict_wf")
    def strict(ctx: Any) -> Generator[Command, Any, None]:
        yield rs_strict()

    error = ErrorInfo(type="builtins.ValueError", message="bad")
    decision = feed(strict, started("rs_strict_wf"), failed(1, 1, "rs_strict", error))
    assert decision.status == "failed"
    assert decision.error is not None and decision.error.type == "builtins.ValueError"


def test_a_retry_timer_for_the_wrong_attempt_is_non_determinism() -> None:
    timer = RetryTimerFired(step=1, name="rs_flaky", attempt=3)
    with pytest.raises(NonDeterminismError, match="retry timer for attempt 3, expected 2"):
        feed(rs_once, started("rs_once"), failed(1, 1), timer)


def test_the_environment_waits_the_backoff_on_the_virtual_clock() -> None:
    env = WorkflowEnvironment(activities={"rs_flaky": _fails_twice})
    run = env.start(rs_once, instance_id=ID).run_to_completion()
    assert run.result() == 3
    fired = [e.at - run.history[0].at for e in run.history if isinstance(e, RetryTimerFired)]
    assert fired == [2.0, 8.0]


def _fails_twice(ctx: Any, x: int) -> int:
    if ctx.attempt < 3:
        raise OSError(f"attempt {ctx.attempt}")
    return 3


def test_terminal_error_from_an_activity_stops_retrying_in_the_environment() -> None:
    def refuse(ctx: Any, x: int) -> int:
        raise TerminalError("card blocked")

    env = WorkflowEnvironment(activities={"rs_flaky": refuse})
    run = env.start(rs_once)
    assert run.result() == "gave up after 1 attempts: card blocked"
    assert len(run.activity_calls) == 1


def test_the_stored_traceback_names_the_error_type_once() -> None:
    @workflow(name="rs_pay")
    def pay(ctx: Any) -> Generator[Command, Any, None]:
        yield rs_flaky(1)

    def decline(ctx: Any, x: int) -> int:
        raise TerminalError("card declined")

    run = WorkflowEnvironment(activities={"rs_flaky": decline}).start(pay)
    error = run.decision.error
    assert error is not None and error.message == "card declined"
    last_line = error.traceback.strip().splitlines()[-1]
    assert last_line == "replaykit.core.errors.TerminalError: card declined"


def test_a_rebuilt_error_reads_as_its_message_and_a_plain_activity_error_names_the_type() -> None:
    declined = ErrorInfo(type="replaykit.core.errors.TerminalError", message="card declined")
    rebuilt = raise_as(ActivityError, declined, lambda name: TerminalError)
    assert isinstance(rebuilt, TerminalError) and str(rebuilt) == "card declined"
    unknown = ErrorInfo(type="shop.Gone", message="no such shop")
    assert str(raise_as(ActivityError, unknown, lambda name: None)) == "shop.Gone: no such shop"


# -- saga -----------------------------------------------------------------------------------------


def trip_until_failure() -> list[Any]:
    error = ErrorInfo(type="builtins.OSError", message="down", retryable=False)
    return [
        started("rs_trip"),
        ActivityCompleted(step=1, name="rs_reserve", result="reserved a"),
        ActivityCompleted(step=2, name="rs_reserve", result="reserved b"),
        failed(3, 1, error=error),
    ]


def test_a_failure_issues_compensations_in_reverse_order_one_at_a_time() -> None:
    interp = Interpreter(rs_trip, instance_id=ID)
    decision = interp.feed(trip_until_failure())
    assert decision.status == "running"
    [first] = decision.commands
    assert isinstance(first.command, Compensate)
    assert (first.step, first.command.of_step, first.command.call.name) == (4, 2, "rs_release")
    assert first.command.original_result == "reserved b"
    assert first.command.call.args == ("b",)
    [second] = interp.feed([CompensationCompleted(step=4, name="rs_release", of_step=2)]).commands
    assert isinstance(second.command, Compensate)
    assert (second.step, second.command.of_step) == (5, 1)


def test_the_workflow_is_failed_only_after_its_compensations_ran() -> None:
    events = trip_until_failure()
    events += [CompensationCompleted(step=4, name="rs_release", of_step=2)]
    events += [CompensationCompleted(step=5, name="rs_release", of_step=1)]
    decision = feed(rs_trip, *events)
    assert decision.status == "failed"
    assert decision.error is not None and decision.error.message == "down"


def test_a_failing_compensation_is_retried_with_its_own_policy() -> None:
    events = [
        *trip_until_failure(),
        CompensationFailed(step=4, name="rs_release", of_step=2, error=OS_ERROR),
    ]
    [scheduled] = feed(rs_trip, *events).commands
    assert scheduled.command == RetryTimer(seconds=1.0, attempt=2, name="rs_release")


def test_a_compensation_that_gives_up_does_not_stop_the_others() -> None:
    events = trip_until_failure()
    events += [CompensationFailed(step=4, name="rs_release", of_step=2, error=OS_ERROR)]
    events += [RetryTimerFired(step=4, name="rs_release", attempt=2)]
    events += [CompensationFailed(step=4, name="rs_release", of_step=2, error=OS_ERROR, attempt=2)]
    [scheduled] = feed(rs_trip, *events).commands
    assert isinstance(scheduled.command, Compensate) and scheduled.command.of_step == 1


def test_a_caught_failure_runs_no_compensation() -> None:
    @workflow(name="rs_forgiving")
    def forgiving(ctx: Any) -> Generator[Command, Any, str]:
        yield rs_reserve("a")
        try:
            yield rs_flaky(0)
        except ActivityError:
            return "handled"
        return "ok"

    error = ErrorInfo(type="builtins.OSError", message="down", retryable=False)
    decision = feed(
        forgiving,
        started("rs_forgiving"),
        ActivityCompleted(step=1, name="rs_reserve", result="reserved a"),
        failed(2, 1, error=error),
    )
    assert (decision.status, decision.result, decision.commands) == ("completed", "handled", ())


def test_compensation_gets_the_original_arguments_and_result_in_the_environment() -> None:
    seen: list[tuple[str, Any]] = []

    def release(ctx: Any, sku: str) -> None:
        seen.append((sku, ctx.compensating_result))

    def broken(ctx: Any, x: int) -> int:
        raise TerminalError("nope")

    env = WorkflowEnvironment(activities={"rs_release": release, "rs_flaky": broken})
    run = env.start(rs_trip).run_to_completion()
    assert run.status == "failed"
    assert seen == [("b", "reserved b"), ("a", "reserved a")]


def test_cancellation_runs_compensations() -> None:
    @workflow(name="rs_cancellable")
    def cancellable(ctx: Any) -> Generator[Command, Any, str]:
        yield rs_reserve("a")
        yield WaitEvent("never")
        return "done"

    env = WorkflowEnvironment()
    run = env.start(cancellable)
    run.cancel("changed my mind")
    assert run.status == "cancelled"
    kinds = [type(e).__name__ for e in run.history]
    assert kinds[-2:] == ["CancelRequested", "CompensationCompleted"]

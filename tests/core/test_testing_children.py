"""Children and deadlines in the in-memory environment: default ids across ``Recur``, deadlines,
parent-close policies (the same rules as tests/runtime/test_children.py on the databases)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from replaykit import (
    AnyOf,
    ChildWorkflowError,
    Command,
    InvalidInput,
    Recur,
    Sleep,
    StartChild,
    WaitEvent,
    WorkflowCancelled,
    WorkflowTimedOut,
    activity,
    workflow,
)
from replaykit.core.history import CancelRequested
from replaykit.testing import WorkflowEnvironment

DAY = 86400.0
UNDONE: list[str] = []


@pytest.fixture(autouse=True)
def _reset() -> None:
    UNDONE.clear()


def tc_release(ctx: Any, what: str) -> None:
    UNDONE.append(what)


@activity(name="tc_reserve", compensate=tc_release)
def tc_reserve(ctx: Any, what: str) -> str:
    return what


@workflow(name="tc_double")
def tc_double(ctx: Any, n: int) -> Generator[Command, Any, int]:
    yield tc_reserve(f"child-{n}")
    yield Sleep(DAY)
    return n * 2


@workflow(name="tc_recurring_parent")
def tc_recurring_parent(ctx: Any, total: int) -> Generator[Command, Any, int]:
    doubled = yield from tc_double.child(ctx.run)
    if ctx.run < 3:
        yield Recur(total + doubled)
    return total + doubled


def test_a_recurring_parent_gets_fresh_default_child_ids_in_every_run() -> None:
    env = WorkflowEnvironment()
    assert env.run(tc_recurring_parent, 0, instance_id="rp") == 2 + 4 + 6
    assert sorted(env.runs) == ["rp", "rp/1", "rp@2/1", "rp@3/1"]
    assert env.runs["rp@2/1"].result() == 4


# -- deadlines ----------------------------------------------------------------------------------


@workflow(name="tc_sleeper")
def tc_sleeper(ctx: Any) -> Generator[Command, Any, str]:
    yield tc_reserve("room")
    yield Sleep(DAY)
    return "woke"


@workflow(name="tc_waiter")
def tc_waiter(ctx: Any) -> Generator[Command, Any, str]:
    yield tc_reserve("seat")
    yield WaitEvent("paid")
    return "paid"


@pytest.mark.parametrize("wf", [tc_sleeper, tc_waiter], ids=["sleeping", "waiting"])
def test_the_deadline_cancels_with_workflow_timed_out_and_compensates(wf: Any) -> None:
    env = WorkflowEnvironment()
    start = env.clock.now
    run = env.start(wf, instance_id="d", timeout=3600)
    with pytest.raises(WorkflowTimedOut) as info:
        run.result()
    assert isinstance(info.value, WorkflowCancelled) and isinstance(info.value, TimeoutError)
    assert run.status == "cancelled"
    assert run.decision.error is not None
    assert run.decision.error.type == "replaykit.core.errors.WorkflowTimedOut"
    expected = "room" if wf is tc_sleeper else "seat"
    assert [expected] == UNDONE
    cancel = next(e for e in run.history if isinstance(e, CancelRequested))
    assert cancel.timed_out and cancel.at == start + 3600
    assert env.store.registered_steps("d") == []  # no timer left behind


def test_an_instance_that_ends_in_time_is_not_touched_by_its_deadline() -> None:
    env = WorkflowEnvironment()
    run = env.start(tc_sleeper, instance_id="d", timeout=2 * DAY)
    assert run.result() == "woke"
    env.advance(3 * DAY)
    assert run.status == "completed" and UNDONE == []
    assert env.store.next_timer_at() is None


@workflow(name="tc_cleans_up")
def tc_cleans_up(ctx: Any) -> Generator[Command, Any, str]:
    try:
        yield Sleep(DAY)
    except WorkflowTimedOut as exc:
        yield tc_reserve("cleanup")
        return f"gave up: {exc.reason}"
    return "slept"


def test_a_workflow_may_catch_its_timeout_and_end_as_it_likes() -> None:
    env = WorkflowEnvironment()
    result = env.run(tc_cleans_up, timeout=60)
    assert result.startswith("gave up: its deadline (2026-01-01T00:01:00.000+00:00) passed")


@workflow(name="tc_recurring_sleeper")
def tc_recurring_sleeper(ctx: Any, n: int) -> Generator[Command, Any, int]:
    yield tc_reserve(f"run-{n}")
    yield Sleep(3600)
    yield Recur(n + 1)
    return n


def test_the_deadline_holds_across_recur() -> None:
    env = WorkflowEnvironment()
    run = env.start(tc_recurring_sleeper, 1, instance_id="r", timeout=2.5 * 3600)
    with pytest.raises(WorkflowTimedOut):
        run.result()
    assert run.run_number == 3 and UNDONE == ["run-3"]


@workflow(name="tc_impatient_parent")
def tc_impatient_parent(ctx: Any) -> Generator[Command, Any, str]:
    try:
        yield tc_double.child(5, timeout=3600)
    except WorkflowTimedOut as exc:
        assert isinstance(exc, ChildWorkflowError)
        return f"child timed out: {exc.type_name}"
    return "child done"


def test_a_child_with_a_timeout_is_cancelled_at_its_deadline() -> None:
    env = WorkflowEnvironment()
    start = env.clock.now
    result = env.run(tc_impatient_parent, instance_id="ip")
    assert result == "child timed out: replaykit.core.errors.WorkflowTimedOut"
    child = env.runs["ip/1"]
    assert child.status == "cancelled" and UNDONE == ["child-5"]
    assert env.clock.now == start + 3600


def test_resume_keeps_the_original_deadline() -> None:
    env = WorkflowEnvironment()
    run = env.start(tc_sleeper, instance_id="d", timeout=3600)
    env.advance(60)
    fresh = WorkflowEnvironment(start_time=env.clock.now)
    resumed = fresh.resume(tc_sleeper, run.history)
    with pytest.raises(WorkflowTimedOut):
        resumed.result()
    assert fresh.clock.now == run.history[0].at + 3600


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), "60", True])
def test_a_timeout_must_be_a_positive_number_of_seconds(timeout: Any) -> None:
    env = WorkflowEnvironment()
    with pytest.raises(InvalidInput, match="timeout"):
        env.start(tc_sleeper, timeout=timeout)
    with pytest.raises(InvalidInput, match="StartChild timeout"):
        StartChild(workflow="tc_double", input=1, timeout=timeout)
    assert env.runs == {}


# -- parent-close policies ------------------------------------------------------------------------


@workflow(name="tc_racer")
def tc_racer(ctx: Any, policy: str) -> Generator[Command, Any, Any]:
    index, _ = yield AnyOf([tc_double.child(1, parent_close=policy), Sleep(60)])
    return index


def test_a_child_that_loses_an_any_is_cancelled_and_compensates() -> None:
    env = WorkflowEnvironment()
    assert env.run(tc_racer, "cancel", instance_id="race") == 1
    loser = env.runs["race/2"]
    assert loser.status == "cancelled" and UNDONE == ["child-1"]
    cancel = next(e for e in loser.history if isinstance(e, CancelRequested))
    assert cancel.reason == "its parent 'race' no longer waits for it (it lost an Any)"


def test_a_child_that_loses_an_any_runs_on_when_abandoned() -> None:
    env = WorkflowEnvironment()
    assert env.run(tc_racer, "abandon", instance_id="race") == 1
    assert env.runs["race/2"].result() == 2 and UNDONE == []


@workflow(name="tc_waiting_parent")
def tc_waiting_parent(ctx: Any) -> Generator[Command, Any, int]:
    yield tc_reserve("parent")
    return (yield from tc_double.child(7))


def test_cancelling_a_parent_cancels_its_child_and_both_compensate() -> None:
    env = WorkflowEnvironment()
    parent = env.start(tc_waiting_parent, instance_id="wp")
    parent.advance(60).cancel("no longer needed")
    assert parent.status == "cancelled"
    child = env.runs["wp/2"]
    assert child.status == "cancelled"
    assert sorted(UNDONE) == ["child-7", "parent"]
    cancel = next(e for e in child.history if isinstance(e, CancelRequested))
    assert cancel.reason == "its parent 'wp' was cancelled"


def test_a_parent_that_times_out_cancels_its_child() -> None:
    env = WorkflowEnvironment()
    parent = env.start(tc_waiting_parent, instance_id="wp", timeout=600)
    with pytest.raises(WorkflowTimedOut):
        parent.result()
    assert env.runs["wp/2"].status == "cancelled"
    assert sorted(UNDONE) == ["child-7", "parent"]


@workflow(name="tc_fire_and_forget")
def tc_fire_and_forget(ctx: Any, policy: str) -> Generator[Command, Any, str]:
    child_id = yield tc_double.start_child(3, parent_close=policy)
    return str(child_id)


def test_a_child_started_without_waiting_is_cancelled_when_its_parent_ends() -> None:
    env = WorkflowEnvironment()
    assert env.run(tc_fire_and_forget, "cancel", instance_id="ff") == "ff/1"
    child = env.runs["ff/1"]
    assert child.status == "cancelled"
    assert UNDONE == [] and child.activity_calls == []  # cancelled before its first step ran


def test_an_abandoned_child_outlives_its_parent() -> None:
    env = WorkflowEnvironment()
    assert env.run(tc_fire_and_forget, "abandon", instance_id="ff") == "ff/1"
    assert env.runs["ff"].status == "completed"
    assert env.runs["ff/1"].status == "waiting"  # parked on its timer, as App.status says
    assert env.runs["ff/1"].result() == 6 and UNDONE == []


def test_a_parent_waits_for_a_child_with_the_wait_policy_before_it_ends() -> None:
    env = WorkflowEnvironment()
    parent = env.start(tc_fire_and_forget, "wait", instance_id="ff")
    env.advance(60)
    assert parent.status == "waiting"  # its code returned; it waits for the child to end
    start = parent.history[0].at
    assert parent.result() == "ff/1"
    assert env.runs["ff/1"].status == "completed" and UNDONE == []
    assert env.clock.now == start + DAY
    assert parent.history[-1].at == start + DAY  # the child's end, told to the parent


def test_cancelling_a_parent_that_waits_for_its_children_cancels_them() -> None:
    env = WorkflowEnvironment()
    parent = env.start(tc_fire_and_forget, "wait", instance_id="ff")
    parent.advance(60).cancel("enough")
    assert env.runs["ff/1"].status == "cancelled" and UNDONE == ["child-3"]
    assert parent.status == "completed" and parent.result() == "ff/1"


def test_a_bad_parent_close_policy_is_refused() -> None:
    with pytest.raises(InvalidInput, match="parent_close"):
        tc_double.child(1, parent_close="orphan")  # type: ignore[arg-type]


@workflow(name="tc_catches_then_recurs")
def tc_catches_then_recurs(ctx: Any, n: int) -> Generator[Command, Any, str]:
    if n > 1:
        yield tc_reserve("after the timeout")
        yield Sleep(DAY)
        return "second run ended"
    try:
        yield Sleep(DAY)
    except WorkflowTimedOut:
        yield Recur(n + 1)
    return "first run ended"


def test_a_run_after_a_caught_timeout_has_no_deadline_left() -> None:
    env = WorkflowEnvironment()
    run = env.start(tc_catches_then_recurs, 1, instance_id="c", timeout=60)
    assert run.result() == "second run ended"
    started = run.history[0]
    assert started.deadline is None  # type: ignore[union-attr]

"""Children and deadlines on each adapter: default ids across ``Recur``, deadlines, parent-close
policies (the same rules as tests/core/test_testing_children.py in memory)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

import pytest

from replaykit import (
    AnyOf,
    ChildWorkflowError,
    Command,
    InvalidInput,
    Recur,
    Sleep,
    WaitEvent,
    WorkflowCancelled,
    WorkflowTimedOut,
    activity,
    workflow,
)
from replaykit.core.history import CancelRequested
from replaykit.runtime.app import App

UNDONE: list[str] = []
DONE: list[str] = []
LOCK = threading.Lock()


@pytest.fixture(autouse=True)
def _reset() -> None:
    UNDONE.clear()
    DONE.clear()


def ch_release(ctx: Any, what: str) -> None:
    with LOCK:
        UNDONE.append(what)


@activity(name="ch_reserve", compensate=ch_release)
def ch_reserve(ctx: Any, what: str) -> str:
    with LOCK:
        DONE.append(what)
    return what


@activity(name="ch_slow_step")
def ch_slow_step(ctx: Any, n: int) -> int:
    time.sleep(0.1)
    with LOCK:
        DONE.append(f"step-{n}")
    return n


@workflow(name="ch_double")
def ch_double(ctx: Any, n: int) -> Generator[Command, Any, int]:
    yield Sleep(0.01)
    return n * 2


@workflow(name="ch_recurring_parent")
def ch_recurring_parent(ctx: Any, total: int) -> Generator[Command, Any, int]:
    doubled = yield from ch_double.child(ctx.run)
    if ctx.run < 3:
        yield Recur(total + doubled)
    return total + doubled


def test_a_recurring_parent_gets_fresh_default_child_ids_in_every_run(
    make_app: Callable[..., App],
) -> None:
    with make_app(workflows=[ch_recurring_parent, ch_double]) as app:
        handle = app.start_workflow(ch_recurring_parent, 0, instance_id="rp")
        assert handle.result(timeout=20) == 2 + 4 + 6
        assert app.status("rp/1").output == 2  # run 1 keeps the ids of existing histories
        assert app.status("rp@2/1").output == 4
        assert app.status("rp@3/1").parent_id == "rp"


# -- deadlines ----------------------------------------------------------------------------------


@workflow(name="ch_sleeper")
def ch_sleeper(ctx: Any) -> Generator[Command, Any, str]:
    yield ch_reserve("room")
    yield Sleep(3600)
    return "woke"


@workflow(name="ch_waiter")
def ch_waiter(ctx: Any) -> Generator[Command, Any, str]:
    yield ch_reserve("seat")
    yield WaitEvent("paid")
    return "paid"


@workflow(name="ch_busy")
def ch_busy(ctx: Any) -> Generator[Command, Any, str]:
    yield ch_reserve("desk")
    for n in range(50):
        yield ch_slow_step(n)
    return "all done"


def _timed_out(app: App, instance_id: str, timeout: float = 20.0) -> WorkflowTimedOut:
    with pytest.raises(WorkflowTimedOut) as info:
        app.result(instance_id, timeout=timeout)
    return info.value


@pytest.mark.parametrize(
    ("wf", "what"),
    [(ch_sleeper, "room"), (ch_waiter, "seat"), (ch_busy, "desk")],
    ids=["sleeping", "waiting", "running activities"],
)
def test_the_deadline_cancels_with_workflow_timed_out_and_compensates(
    make_app: Callable[..., App], wf: Any, what: str
) -> None:
    with make_app() as app:
        started = time.time()
        handle = app.start_workflow(wf, instance_id="d", timeout=1.5)
        error = _timed_out(app, "d")
        assert isinstance(error, WorkflowCancelled) and isinstance(error, TimeoutError)
        assert time.time() - started < 10
        record = app.status("d")
        assert record.status == "cancelled"
        assert record.error["type"] == "replaykit.core.errors.WorkflowTimedOut"
        assert record.deadline == pytest.approx(record.created_at + 1.5)
        assert what in UNDONE and len(UNDONE) == 1
        cancel = [e for e in app.history("d") if isinstance(e, CancelRequested)]
        assert len(cancel) == 1 and cancel[0].timed_out
        with pytest.raises(WorkflowTimedOut):
            handle.result(timeout=5)
    if wf is ch_busy:
        assert 1 <= len([d for d in DONE if d.startswith("step-")]) < 50


@activity(name="ch_long_sync", transactional=False)
def ch_long_sync(ctx: Any, seconds: float) -> str:
    time.sleep(seconds)  # runs on after it is given up; what it returns is discarded
    return "late"


@activity(name="ch_long_async", transactional=False)
async def ch_long_async(ctx: Any, seconds: float) -> str:
    await asyncio.sleep(seconds)
    with LOCK:
        DONE.append("long async ended")
    return "late"


@workflow(name="ch_long_runner")
def ch_long_runner(ctx: Any, kind: str) -> Generator[Command, Any, str]:
    yield ch_reserve("bench")
    if kind == "sync":
        return (yield ch_long_sync(5.0))
    return (yield ch_long_async(30.0))


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_deadline_gives_up_a_long_activity_that_is_not_transactional(
    make_app: Callable[..., App], kind: str
) -> None:
    with make_app() as app:
        started = time.monotonic()
        app.start_workflow(ch_long_runner, kind, instance_id="long", timeout=1.5)
        _timed_out(app, "long")
        assert time.monotonic() - started < 4.5  # not after the activity's 5 (or 30) s
        assert UNDONE == ["bench"]
        kinds = [type(e).__name__ for e in app.history("long")]
        assert "ActivityCompleted" in kinds and kinds.count("ActivityCompleted") == 1
    time.sleep(0.1)
    assert "long async ended" not in DONE  # cancelled (the sync one runs on, unheeded)


def test_an_instance_that_ends_in_time_keeps_its_result(make_app: Callable[..., App]) -> None:
    with make_app() as app:
        handle = app.start_workflow(ch_waiter, instance_id="ok", timeout=30)
        assert app.status("ok").deadline is not None
        handle.send_event("paid")
        assert handle.result(timeout=20) == "paid"
        assert app.storage.registered_steps("ok") == []  # its deadline timer went with it
    assert UNDONE == []


def test_a_deadline_that_passes_while_no_worker_runs_is_kept(
    make_app: Callable[..., App],
) -> None:
    client = make_app(workers=False)
    client.start_workflow(ch_waiter, instance_id="later", timeout=0.3)
    time.sleep(0.5)
    with make_app() as app:
        _timed_out(app, "later")
    assert DONE == UNDONE == []  # cancelled at its first yield: nothing ran, nothing to undo


@workflow(name="ch_slow_child")
def ch_slow_child(ctx: Any, n: int) -> Generator[Command, Any, int]:
    yield ch_reserve(f"child-{n}")
    yield Sleep(3600)
    return n


@workflow(name="ch_impatient_parent")
def ch_impatient_parent(ctx: Any) -> Generator[Command, Any, str]:
    try:
        yield ch_slow_child.child(5, timeout=0.3)
    except WorkflowTimedOut as exc:
        assert isinstance(exc, ChildWorkflowError)
        return f"child timed out: {exc.type_name}"
    return "child done"


def test_a_child_with_a_timeout_is_cancelled_at_its_deadline(
    make_app: Callable[..., App],
) -> None:
    with make_app(workflows=[ch_impatient_parent, ch_slow_child]) as app:
        handle = app.start_workflow(ch_impatient_parent, instance_id="ip")
        assert handle.result(timeout=20) == (
            "child timed out: replaykit.core.errors.WorkflowTimedOut"
        )
        child = app.status("ip/1")
        assert child.status == "cancelled" and child.deadline is not None
    assert UNDONE == ["child-5"]


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), "1"])
def test_a_bad_timeout_is_refused_and_stores_nothing(
    make_app: Callable[..., App], timeout: Any
) -> None:
    app = make_app(workers=False)
    with pytest.raises(InvalidInput, match="timeout"):
        app.start_workflow(ch_waiter, instance_id="bad", timeout=timeout)
    assert app.get_instance("bad") is None


# -- parent-close policies ------------------------------------------------------------------------


@workflow(name="ch_racer")
def ch_racer(ctx: Any, policy: str) -> Generator[Command, Any, Any]:
    index, _ = yield AnyOf([ch_slow_child.child(1, parent_close=policy), Sleep(0.2)])
    return index


def _wait_status(app: App, instance_id: str, status: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while (record := app.get_instance(instance_id)) is None or record.status != status:
        assert time.monotonic() < deadline, f"{instance_id} never became {status}"
        time.sleep(0.02)


def test_a_child_that_loses_an_any_is_cancelled_and_compensates(
    make_app: Callable[..., App],
) -> None:
    with make_app(workflows=[ch_racer, ch_slow_child]) as app:
        assert app.start_workflow(ch_racer, "cancel", instance_id="race").result(timeout=20) == 1
        _wait_status(app, "race/2", "cancelled")
        cancel = [e for e in app.history("race/2") if isinstance(e, CancelRequested)]
        assert cancel[0].reason == "its parent 'race' no longer waits for it (it lost an Any)"
    assert UNDONE == ["child-1"]


def test_a_child_that_loses_an_any_runs_on_when_abandoned(make_app: Callable[..., App]) -> None:
    with make_app(workflows=[ch_racer, ch_slow_child]) as app:
        assert app.start_workflow(ch_racer, "abandon", instance_id="race").result(timeout=20) == 1
        _wait_status(app, "race/2", "waiting")  # sleeping its hour, not cancelled
        time.sleep(0.3)
        assert app.status("race/2").status == "waiting"
    assert UNDONE == []


@workflow(name="ch_waiting_parent")
def ch_waiting_parent(ctx: Any) -> Generator[Command, Any, int]:
    yield ch_reserve("parent")
    return (yield from ch_slow_child.child(7))


def test_cancelling_a_parent_cancels_its_child_and_both_compensate(
    make_app: Callable[..., App],
) -> None:
    with make_app(workflows=[ch_waiting_parent, ch_slow_child]) as app:
        handle = app.start_workflow(ch_waiting_parent, instance_id="wp")
        _wait_status(app, "wp/2", "waiting")
        handle.cancel("no longer needed")
        with pytest.raises(WorkflowCancelled):
            handle.result(timeout=20)
        _wait_status(app, "wp/2", "cancelled")
        cancel = [e for e in app.history("wp/2") if isinstance(e, CancelRequested)]
        assert cancel[0].reason == "its parent 'wp' was cancelled"
    assert sorted(UNDONE) == ["child-7", "parent"]


@workflow(name="ch_slow_double")
def ch_slow_double(ctx: Any, n: int) -> Generator[Command, Any, int]:
    yield ch_reserve(f"slow-{n}")
    yield Sleep(3600 if n > 0 else 0.2)
    return n * 2


@workflow(name="ch_fire_and_forget")
def ch_fire_and_forget(ctx: Any, policy: str) -> Generator[Command, Any, str]:
    child_id = yield ch_slow_double.start_child(0 if policy == "wait" else 3, parent_close=policy)
    yield Sleep(0.3)
    return str(child_id)


@pytest.mark.parametrize(
    ("policy", "child_status"),
    [("cancel", "cancelled"), ("abandon", "waiting"), ("wait", "completed")],
)
def test_a_child_started_without_waiting_follows_its_parent_close_policy(
    make_app: Callable[..., App], policy: str, child_status: str
) -> None:
    with make_app(workflows=[ch_fire_and_forget, ch_slow_double]) as app:
        handle = app.start_workflow(ch_fire_and_forget, policy, instance_id="ff")
        assert handle.result(timeout=20) == "ff/1"
        if policy == "wait":  # the parent ended only after its child (which sleeps 0.2 s)
            assert app.status("ff/1").status == "completed"
            assert app.status("ff").updated_at >= app.status("ff/1").updated_at
        _wait_status(app, "ff/1", child_status)
    # a cancelled child compensates what it did (it reserved, unless cancelled before that)
    assert ([d for d in DONE if d == "slow-3"] if policy == "cancel" else []) == UNDONE


@workflow(name="ch_patient_parent")
def ch_patient_parent(ctx: Any) -> Generator[Command, Any, str]:
    yield ch_slow_double.start_child(3, parent_close="wait")
    return "parent done"


def test_cancelling_a_parent_that_waits_for_its_children_cancels_them(
    make_app: Callable[..., App],
) -> None:
    with make_app(workflows=[ch_patient_parent, ch_slow_double]) as app:
        handle = app.start_workflow(ch_patient_parent, instance_id="pp")
        _wait_status(app, "pp/1", "waiting")
        assert app.status("pp").status == "waiting"  # its code returned; it waits for pp/1
        handle.cancel("enough")
        assert handle.result(timeout=20) == "parent done"
        assert app.status("pp/1").status == "cancelled"
    assert UNDONE == ["slow-3"]


@workflow(name="ch_catches_then_recurs")
def ch_catches_then_recurs(ctx: Any, n: int) -> Generator[Command, Any, str]:
    if n > 1:
        yield ch_reserve("after the timeout")
        return "second run ended"
    try:
        yield Sleep(3600)
    except WorkflowTimedOut:
        yield Recur(n + 1)
    return "first run ended"


def test_a_run_after_a_caught_timeout_runs_its_activities(make_app: Callable[..., App]) -> None:
    with make_app() as app:
        handle = app.start_workflow(ch_catches_then_recurs, 1, instance_id="c", timeout=0.3)
        assert handle.result(timeout=20) == "second run ended"
        assert DONE == ["after the timeout"]

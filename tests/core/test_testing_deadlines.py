"""In the in-memory environment: starts on a queue with a deadline (counted from the admission) and
``cancelling`` while a cancelled or timed-out instance compensates (the same rules, and these
workflows, in tests/runtime/test_queued_deadlines.py on the databases)."""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import Any

import pytest

from replaykit import (
    Command,
    InvalidInput,
    RetryPolicy,
    Sleep,
    WaitEvent,
    WorkflowCancelled,
    WorkflowTimedOut,
    activity,
    workflow,
)
from replaykit.core.history import WorkflowStarted
from replaykit.testing import WorkflowEnvironment

UNDONE: list[str] = []
#: what a compensation of a "slow..." booking waits for (only threads of a real App wait)
RELEASE = threading.Event()


@pytest.fixture(autouse=True)
def _reset() -> None:
    UNDONE.clear()


@activity(name="td_unbook", retry=RetryPolicy(max_attempts=3, initial_interval=60.0))
def td_unbook(ctx: Any, what: str) -> None:
    """Undo a booking: a "shaky..." one fails once (retried 60 s later), a "slow..." one
    waits for :data:`RELEASE`."""
    if what.startswith("shaky") and ctx.attempt < 2:
        raise ConnectionError("try again")
    if what.startswith("slow"):
        RELEASE.wait(30)
    UNDONE.append(what)


@activity(name="td_book", compensate=td_unbook)
def td_book(ctx: Any, what: str) -> str:
    return what


@workflow(name="td_blocker")
def td_blocker(ctx: Any) -> Generator[Command, Any, str]:
    yield WaitEvent("td.go")
    return "unblocked"


@workflow(name="td_job")
def td_job(ctx: Any, seconds: float) -> Generator[Command, Any, str]:
    yield td_book("job")
    yield Sleep(seconds)
    return "done"


@workflow(name="td_holder")
def td_holder(ctx: Any, what: str) -> Generator[Command, Any, str]:
    yield td_book(what)
    yield WaitEvent("td.never")
    return "never"


@workflow(name="td_parent")
def td_parent(ctx: Any, kid: str) -> Generator[Command, Any, str]:
    yield td_holder.child(kid, instance_id="td-kid")
    return "never"


WORKFLOWS = [td_blocker, td_job, td_holder, td_parent]


def _queued_job(env: WorkflowEnvironment, seconds: float, timeout: float) -> Any:
    env.queue("td-q", concurrency=1)
    env.enqueue("td-q", td_blocker, instance_id="blocker")
    return env.enqueue("td-q", td_job, seconds, instance_id="job", timeout=timeout)


def test_a_queued_start_with_a_timeout_counts_its_deadline_from_its_admission() -> None:
    env = WorkflowEnvironment()
    run = _queued_job(env, 30, timeout=60)
    env.advance(3600)  # an hour in the queue: longer than its timeout, which does not count
    assert run.status == "queued"
    admitted = env.clock.now
    env.send_event("td.go", instance_id="blocker")
    assert run.result() == "done"
    first = run.history[0]
    assert isinstance(first, WorkflowStarted) and first.deadline == admitted + 60
    assert UNDONE == []


def test_a_queued_start_times_out_its_timeout_after_its_admission() -> None:
    env = WorkflowEnvironment()
    run = _queued_job(env, 3600, timeout=60)
    env.advance(600)
    env.send_event("td.go", instance_id="blocker")
    admitted = env.clock.now
    with pytest.raises(WorkflowTimedOut):
        run.result()
    assert run.status == "cancelled" and env.clock.now == admitted + 60
    assert UNDONE == ["job"]


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), "1"])
def test_a_bad_queued_timeout_is_refused_and_stores_nothing(timeout: Any) -> None:
    env = WorkflowEnvironment()
    env.queue("td-q")
    with pytest.raises(InvalidInput, match="timeout"):
        env.enqueue("td-q", td_job, 1, instance_id="bad", timeout=timeout)
    assert "bad" not in env.runs


def test_a_timed_out_instance_reads_cancelling_while_its_compensations_run() -> None:
    env = WorkflowEnvironment()
    run = env.start(td_holder, "shaky-room", instance_id="t", timeout=100)
    env.advance(100)  # the deadline: the compensation fails once, is retried in 60 s
    assert run.status == "cancelling"
    assert env.store.read_status("t") == "cancelling"
    env.advance(60)
    assert run.status == "cancelled" and UNDONE == ["shaky-room"]
    with pytest.raises(WorkflowTimedOut):
        run.result()


def test_a_cancelled_instance_reads_cancelling_while_its_compensations_run() -> None:
    env = WorkflowEnvironment()
    run = env.start(td_holder, "shaky-seat", instance_id="c")
    run.cancel("changed my mind")
    assert run.status == "cancelling"
    env.advance(60)
    assert run.status == "cancelled"
    with pytest.raises(WorkflowCancelled):
        run.result()


def test_a_child_cancelled_by_its_parent_reads_cancelling_while_it_compensates() -> None:
    env = WorkflowEnvironment()
    env.start(td_parent, "shaky-kid", instance_id="p", timeout=100)
    env.advance(100)
    assert env.runs["td-kid"].status == "cancelling"
    env.advance(60)
    assert env.runs["td-kid"].status == "cancelled"
    assert env.runs["p"].status == "cancelled"

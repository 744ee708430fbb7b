"""Deadlines (``timeout=``): passing while the workflow sleeps, while it waits for an event (a late
event then finds it ended), while it waits for a message and catches the timeout (it reads
``cancelling`` until it has ended as its code says), across ``Recur``; while its compensations
run (one of them fails once and is retried, so the script can stop in the middle:
``cancelling``); a child's deadline caught by its parent; a deadline that never passes because
the workflow finished first; starts on a queue with a timeout, whose deadline clock starts at the
admission, not at the enqueue."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from replaykit import (
    Now,
    Receive,
    Recur,
    RetryPolicy,
    Sleep,
    WaitEvent,
    WorkflowTimedOut,
    activity,
    workflow,
)

from ..harness import (
    Advance,
    Cancel,
    DeclareQueue,
    Enqueue,
    Scenario,
    SendEvent,
    StartWorkflow,
)


@activity(name="d_dl_unhold", retry=RetryPolicy(max_attempts=3, initial_interval=5.0))
def d_dl_unhold(ctx: Any, item: str) -> str:
    if item.startswith("shaky") and ctx.attempt < 2:
        raise ConnectionError(f"could not release {item} yet")
    return f"released {ctx.compensating_result}"


@activity(name="d_dl_hold", compensate=d_dl_unhold)
def d_dl_hold(ctx: Any, item: str) -> str:
    return f"held-{item}"


@workflow(name="d_dl_sleeper")
def d_dl_sleeper(ctx: Any, item: str) -> Generator[Any, Any, str]:
    yield d_dl_hold(item)
    yield Sleep(3600)
    return f"{item} slept"


@workflow(name="d_dl_waiter")
def d_dl_waiter(ctx: Any, item: str) -> Generator[Any, Any, Any]:
    yield d_dl_hold(item)
    got = yield WaitEvent("d.dl.go")  # no timeout of its own: the deadline bounds it
    return [item, got.data]


@workflow(name="d_dl_stubborn")
def d_dl_stubborn(ctx: Any, item: str) -> Generator[Any, Any, str]:
    yield d_dl_hold(item)
    try:
        got = yield Receive("d.dl.box")  # a message wait, bounded by the deadline only
    except WorkflowTimedOut:
        yield Sleep(30)  # tidies up after its deadline: it reads cancelling meanwhile
        return f"{item}: gave up"
    return f"{item}: {got.data}"


@workflow(name="d_dl_looper")
def d_dl_looper(ctx: Any, n: int) -> Generator[Any, Any, int]:
    yield Sleep(10)
    yield Recur(n + 1)
    return n


@workflow(name="d_dl_parent")
def d_dl_parent(ctx: Any) -> Generator[Any, Any, str]:
    try:
        yield d_dl_sleeper.child("kid-room", timeout=30)
    except WorkflowTimedOut as exc:
        return f"child timed out: {exc.type_name}"
    return "child done"


@workflow(name="d_dl_job")
def d_dl_job(ctx: Any, seconds: float) -> Generator[Any, Any, float]:
    started = yield Now()
    yield Sleep(seconds)
    return started.timestamp()


def _go(instance_id: str) -> SendEvent:
    return SendEvent("d.dl.go", {"for": instance_id}, instance_id=instance_id)


SCENARIOS = [
    Scenario(
        "deadline_passes_while_sleeping_and_while_waiting_for_an_event",
        workflows=(d_dl_sleeper, d_dl_waiter),
        activities=(d_dl_hold,),
        script=(
            StartWorkflow("d_dl_sleeper", "dl-sleep", "bed", timeout=100),
            StartWorkflow("d_dl_waiter", "dl-wait", "seat", timeout=50),
            Advance(200),
            _go("dl-wait"),  # too late: it timed out
        ),
        expect={"dl-sleep": "cancelled", "dl-wait": "cancelled"},
    ),
    Scenario(
        "deadline_caught_while_receiving_a_message_reads_cancelling_until_it_ends",
        workflows=(d_dl_stubborn,),
        activities=(d_dl_hold,),
        script=(
            StartWorkflow("d_dl_stubborn", "dl-stub-done", "pen", timeout=10),
            StartWorkflow("d_dl_stubborn", "dl-stub-mid", "ink", timeout=20),
            Advance(45),  # dl-stub-done tidied up until 40; dl-stub-mid tidies up until 50
        ),
        expect={"dl-stub-done": "completed", "dl-stub-mid": "cancelling"},
    ),
    Scenario(
        "deadline_holds_across_recur",
        workflows=(d_dl_looper,),
        script=(StartWorkflow("d_dl_looper", "dl-loop", 0, timeout=35), Advance(100)),
        expect={"dl-loop": "cancelled"},
    ),
    Scenario(
        "deadline_reads_cancelling_while_compensations_run",
        workflows=(d_dl_waiter,),
        activities=(d_dl_hold,),
        script=(
            StartWorkflow("d_dl_waiter", "dl-comp-done", "shaky-a", timeout=20),
            StartWorkflow("d_dl_waiter", "dl-comp-mid", "shaky-b", timeout=60),
            Advance(60),  # dl-comp-mid's deadline: its compensation fails once, retried at 65
        ),
        expect={"dl-comp-done": "cancelled", "dl-comp-mid": "cancelling"},
    ),
    Scenario(
        "child_deadline_is_caught_by_the_parent",
        workflows=(d_dl_parent, d_dl_sleeper),
        activities=(d_dl_hold,),
        script=(StartWorkflow("d_dl_parent", "dl-parent"), Advance(40)),
        expect={"dl-parent": "completed", "dl-parent/1": "cancelled"},
    ),
    Scenario(
        "deadline_that_does_not_pass_because_it_finished_first",
        workflows=(d_dl_waiter,),
        activities=(d_dl_hold,),
        script=(
            StartWorkflow("d_dl_waiter", "dl-in-time", "desk", timeout=100),
            Advance(10),
            _go("dl-in-time"),
            Advance(200),
        ),
        expect={"dl-in-time": "completed"},
    ),
    Scenario(
        "queued_start_with_a_deadline_counts_from_its_admission",
        workflows=(d_dl_waiter, d_dl_job),
        activities=(d_dl_hold,),
        script=(
            DeclareQueue("d-dl-q", concurrency=1),
            Enqueue("d-dl-q", "d_dl_waiter", "dlq-first", "lamp"),
            Enqueue("d-dl-q", "d_dl_job", "dlq-in-time", 30, timeout=50),
            Enqueue("d-dl-q", "d_dl_job", "dlq-late", 30, timeout=10),
            Enqueue("d-dl-q", "d_dl_job", "dlq-cancelled", 30, timeout=10),
            Advance(40),  # all but the first still queued: no deadline runs yet
            Cancel("dlq-cancelled", "not needed"),
            _go("dlq-first"),  # dlq-in-time admitted at 40: ends at 70, before 90
            Advance(100),  # dlq-late admitted at 70: its deadline at 80 passes while it sleeps
        ),
        expect={
            "dlq-first": "completed",
            "dlq-in-time": "completed",
            "dlq-late": "cancelled",
            "dlq-cancelled": "cancelled",
        },
    ),
]

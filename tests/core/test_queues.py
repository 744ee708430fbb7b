"""Queues: the admission rule (pure) and queue limits in replaykit.testing on the virtual clock."""

from __future__ import annotations

from typing import Any

import pytest

from replaykit import (
    InvalidInput,
    Now,
    Sleep,
    WaitEvent,
    WorkflowCancelled,
    activity,
    workflow,
)
from replaykit.core.errors import DuplicateQueueKey, UnknownQueue
from replaykit.core.queues import Admission, QueueSpec, admission, queue_spec
from replaykit.testing import WorkflowEnvironment, WorkflowStuck

# -- the rule ---------------------------------------------------------------------------------


def decide(spec: QueueSpec, **counts: Any) -> Admission:
    counts.setdefault("wanted", 10)
    counts.setdefault("running", 0)
    counts.setdefault("mine", 0)
    counts.setdefault("recent", [])
    counts.setdefault("now", 100.0)
    return admission(spec, **counts)


def test_no_limits_admit_everything_wanted() -> None:
    assert decide(queue_spec("q"), wanted=7) == Admission(count=7)


def test_concurrency_admits_up_to_the_free_places() -> None:
    assert decide(queue_spec("q", concurrency=3), running=1).count == 2
    assert decide(queue_spec("q", concurrency=3), running=3).count == 0
    assert decide(queue_spec("q", concurrency=3), running=5).count == 0  # lowered limit


def test_per_worker_counts_only_the_asking_worker() -> None:
    spec = queue_spec("q", concurrency=10, per_worker=2)
    assert decide(spec, running=9, mine=0).count == 1
    assert decide(spec, running=4, mine=1).count == 1
    assert decide(spec, running=4, mine=2).count == 0


def test_rate_limit_counts_starts_inside_the_window_only() -> None:
    spec = queue_spec("q", rate=(3, 10.0))
    assert decide(spec, recent=[90.0, 95.0], now=100.0) == Admission(count=0 + 3 - 1)
    assert decide(spec, recent=[90.5, 95.0, 99.0], now=100.0) == Admission(count=0, retry_at=100.5)
    # a start exactly one period ago has left the window
    assert decide(spec, recent=[90.0, 95.0, 99.0], now=100.0).count == 1


def test_rate_retry_time_is_when_enough_old_starts_have_left() -> None:
    spec = queue_spec("q", rate=(2, 10.0))
    # four starts in the window (the limit was lowered): two must leave before the next start
    decision = decide(spec, recent=[91.0, 92.0, 93.0, 94.0], now=95.0)
    assert decision == Admission(count=0, retry_at=103.0)


def test_no_retry_time_when_concurrency_is_what_stops() -> None:
    spec = queue_spec("q", concurrency=1, rate=(1, 10.0))
    assert decide(spec, running=1, recent=[99.0]) == Admission(count=0)


def test_wanted_bounds_the_count() -> None:
    assert decide(queue_spec("q", concurrency=50), wanted=3).count == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"concurrency": 0},
        {"per_worker": -1},
        {"concurrency": 1.5},
        {"concurrency": True},
        {"rate": (0, 1.0)},
        {"rate": (1, 0.0)},
        {"rate": (1, float("inf"))},
        {"rate": 5},
    ],
)
def test_bad_limits_are_invalid_input(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        queue_spec("q", **kwargs)


@pytest.mark.parametrize("name", ["", "x" * 256, "a\x00b"])
def test_bad_queue_names_are_invalid_input(name: str) -> None:
    with pytest.raises(InvalidInput):
        queue_spec(name)


# -- in replaykit.testing ------------------------------------------------------------------------


@activity
def note(ctx: Any, n: int) -> int:
    return n


@workflow
def slow_job(ctx: Any, n: int) -> float:
    started = yield Now()  # when the queue admitted it (the instance runs at once then)
    yield Sleep(10)
    yield note(n)
    return float(started.timestamp())


def test_concurrency_holds_on_the_virtual_clock() -> None:
    env = WorkflowEnvironment()
    env.queue("q", concurrency=2)
    runs = [env.enqueue("q", slow_job, i) for i in range(5)]
    assert [r.status for r in runs].count("queued") == 3
    assert [s.running for s in env.queue_stats()] == [2]
    starts = [r.result() for r in runs]
    base = starts[0]
    assert [s - base for s in starts] == [0.0, 0.0, 10.0, 10.0, 20.0]


def test_rate_limit_holds_on_the_virtual_clock() -> None:
    env = WorkflowEnvironment()
    env.queue("q", rate=(2, 60.0))
    runs = [env.enqueue("q", slow_job, i) for i in range(5)]
    starts = [r.result() for r in runs]
    base = starts[0]
    assert [s - base for s in starts] == [0.0, 0.0, 60.0, 60.0, 120.0]


def test_per_worker_limits_the_one_test_worker() -> None:
    env = WorkflowEnvironment()
    env.queue("q", per_worker=1)
    runs = [env.enqueue("q", slow_job, i) for i in range(3)]
    base = runs[0].result()
    assert [r.result() - base for r in runs] == [0.0, 10.0, 20.0]


def test_priority_goes_first_then_fifo() -> None:
    env = WorkflowEnvironment()
    env.queue("q", concurrency=1)
    first = env.enqueue("q", slow_job, 0)
    low = env.enqueue("q", slow_job, 1)
    high = env.enqueue("q", slow_job, 2, priority=3)
    later_high = env.enqueue("q", slow_job, 3, priority=3)
    base = first.result()
    times = [r.result() - base for r in (high, later_high, low)]
    assert times == [10.0, 20.0, 30.0]


def test_dedup_key_is_refused_while_unfinished_then_free() -> None:
    env = WorkflowEnvironment()
    env.queue("q")
    run = env.enqueue("q", slow_job, 0, dedup_key="k")
    with pytest.raises(DuplicateQueueKey) as caught:
        env.enqueue("q", slow_job, 1, dedup_key="k")
    assert caught.value.instance_id == run.instance_id
    run.result()
    assert env.enqueue("q", slow_job, 1, dedup_key="k").result() > 0


def test_enqueue_on_an_undeclared_queue_raises() -> None:
    with pytest.raises(UnknownQueue):
        WorkflowEnvironment().enqueue("nope", slow_job, 0)


def test_cancelling_a_queued_run_ends_it_without_waiting_for_the_queue() -> None:
    env = WorkflowEnvironment()
    env.queue("q", concurrency=1)
    env.enqueue("q", slow_job, 0)
    queued = env.enqueue("q", slow_job, 1)
    queued.cancel("not needed")
    assert queued.status == "cancelled" and queued.activity_calls == []
    with pytest.raises(WorkflowCancelled, match="not needed"):
        queued.result()


def test_a_run_blocked_behind_a_waiting_instance_says_so() -> None:
    @workflow
    def waits_forever(ctx: Any) -> Any:
        yield WaitEvent("never")

    env = WorkflowEnvironment()
    env.queue("q", concurrency=1)
    env.enqueue("q", waits_forever)
    blocked = env.enqueue("q", slow_job, 1)
    with pytest.raises(WorkflowStuck, match="queue"):
        blocked.result()

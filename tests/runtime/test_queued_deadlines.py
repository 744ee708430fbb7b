"""Deadlines of starts on a queue (counted from the admission) and the ``cancelling`` status of an
instance whose deadline passed, on each adapter (in memory, with the same workflows:
tests/core/test_testing_deadlines.py; the differential corpus compares both sides:
tests/differential/corpus/deadlines.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from replaykit import InvalidInput, WorkflowTimedOut
from replaykit.core.history import WorkflowStarted
from replaykit.runtime.app import App

from ..core.test_testing_deadlines import (
    RELEASE,
    UNDONE,
    WORKFLOWS,
    td_blocker,
    td_holder,
    td_job,
    td_parent,
)
from ..ops.workflows import wait_for_status


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    UNDONE.clear()
    RELEASE.clear()
    yield
    RELEASE.set()  # no compensation thread waits on after its test


def _queued_job(app: App, instance_id: str, seconds: float, timeout: float) -> None:
    """A job on a queue whose only place a blocker holds until ``td.go`` is sent to it."""
    app.queue("td-q", concurrency=1)
    app.enqueue("td-q", td_blocker, instance_id="blocker")
    app.start_workflow(td_job, seconds, instance_id=instance_id, queue="td-q", timeout=timeout)


def test_a_queued_start_with_a_timeout_has_no_deadline_until_its_queue_admits_it(
    make_app: Callable[..., App],
) -> None:
    with make_app(workflows=WORKFLOWS) as app:
        _queued_job(app, "job", 0.1, timeout=1.0)
        time.sleep(1.5)  # longer than its timeout, but in the queue: it does not count
        queued = app.status("job")
        assert (queued.status, queued.deadline, queued.timeout) == ("queued", None, 1.0)
        app.send_event("td.go", instance_id="blocker")
        assert app.result("job", timeout=20) == "done"
        record = app.status("job")
        assert record.admitted_at is not None and record.deadline is not None
        assert record.deadline == pytest.approx(record.admitted_at + 1.0)
        first = app.history("job")[0]
        assert isinstance(first, WorkflowStarted) and first.deadline == record.deadline
    assert UNDONE == []


def test_a_queued_start_times_out_its_timeout_after_its_admission(
    make_app: Callable[..., App],
) -> None:
    with make_app(workflows=WORKFLOWS) as app:
        _queued_job(app, "late", 3600, timeout=0.5)
        time.sleep(0.8)
        assert app.status("late").status == "queued"
        app.send_event("td.go", instance_id="blocker")
        with pytest.raises(WorkflowTimedOut):
            app.result("late", timeout=20)
        record = app.status("late")
        assert record.status == "cancelled"
        assert record.error["type"] == "replaykit.core.errors.WorkflowTimedOut"
        assert record.admitted_at is not None
        assert record.deadline == pytest.approx(record.admitted_at + 0.5)
        assert app.storage.registered_steps("late") == []
    assert UNDONE == ["job"]


def test_a_queued_timeout_is_stored_and_kept_while_no_worker_runs(
    make_app: Callable[..., App],
) -> None:
    client = make_app(workers=False)
    client.queue("td-q", concurrency=1)
    client.enqueue("td-q", td_job, 3600, instance_id="stored", timeout=0.3)
    client.stop()
    time.sleep(0.5)
    with make_app(workflows=WORKFLOWS) as app:
        app.queue("td-q", concurrency=1)
        with pytest.raises(WorkflowTimedOut):
            app.result("stored", timeout=20)
        record = app.status("stored")
        assert record.admitted_at is not None  # counted from there, not from the enqueue
        assert record.deadline == pytest.approx(record.admitted_at + 0.3)


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), "1"])
def test_a_bad_queued_timeout_is_refused_and_stores_nothing(
    make_app: Callable[..., App], timeout: Any
) -> None:
    app = make_app(workers=False, workflows=WORKFLOWS)
    app.queue("td-q")
    with pytest.raises(InvalidInput, match="timeout"):
        app.enqueue("td-q", td_job, 1, instance_id="bad", timeout=timeout)
    with pytest.raises(InvalidInput, match="timeout"):
        app.start_workflow(td_job, 1, instance_id="bad", queue="td-q", timeout=timeout)
    assert app.get_instance("bad") is None


def test_a_timed_out_instance_reads_cancelling_while_its_compensations_run(
    make_app: Callable[..., App],
) -> None:
    with make_app(workflows=WORKFLOWS) as app:
        app.start_workflow(td_holder, "slow-room", instance_id="t", timeout=0.3)
        wait_for_status(app, "t", "cancelling")  # its compensation waits for RELEASE
        assert [r.instance_id for r in app.list_instances(status="cancelling")] == ["t"]
        assert app.list_instances(status="running") == []
        assert app.stats()["by_status"]["cancelling"] == 1
        assert app.status("t").cancel_requested_at is not None
        RELEASE.set()
        with pytest.raises(WorkflowTimedOut):
            app.result("t", timeout=20)
        assert app.status("t").status == "cancelled"
    assert UNDONE == ["slow-room"]


def test_a_child_cancelled_by_its_parent_reads_cancelling_while_it_compensates(
    make_app: Callable[..., App],
) -> None:
    with make_app(workflows=WORKFLOWS) as app:
        app.start_workflow(td_parent, "slow-kid", instance_id="p", timeout=0.3)
        wait_for_status(app, "td-kid", "cancelling")  # the parent's deadline cancels its child
        RELEASE.set()
        with pytest.raises(WorkflowTimedOut):
            app.result("p", timeout=20)
        wait_for_status(app, "td-kid", "cancelled")
    assert UNDONE == ["slow-kid"]

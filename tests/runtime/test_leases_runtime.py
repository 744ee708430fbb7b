"""The runtime's side of the lease contract: a worker never runs one instance twice at once."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from replaykit import activity, workflow
from replaykit.core.definitions import Registry
from replaykit.runtime.app import App
from replaykit.runtime.clock import SystemClock
from replaykit.runtime.hooks import HookDispatcher
from replaykit.runtime.worker import Worker

from ..storage.test_liveness import sever

STARTS: list[float] = []
INSIDE = threading.Event()


@activity
def slow_step(ctx: Any) -> str:
    STARTS.append(time.time())
    INSIDE.set()
    time.sleep(2.5)
    return "done"


@workflow
def one_slow_step(ctx: Any):  # type: ignore[no-untyped-def]
    return (yield slow_step())


def test_a_worker_never_claims_an_instance_it_is_running(tmp_path: Path) -> None:
    """The lease of a running instance ends under its own worker while every write waits for
    SQLite's write lock (held here by another connection for 2 s, four leases long): the worker
    must not claim the instance again and run the activity a second time beside the first."""
    STARTS.clear()
    INSIDE.clear()
    db = tmp_path / "rk.db"
    app = App(
        f"sqlite:///{db}",
        registry=Registry(),
        workflows=[one_slow_step],
        lease_seconds=0.5,
        poll_interval=0.05,
    )
    with app:
        handle = app.start_workflow(one_slow_step)
        assert INSIDE.wait(10)
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        time.sleep(2.0)
        blocker.execute("ROLLBACK")
        blocker.close()
        assert handle.result(timeout=20) == "done"
    assert len(STARTS) == 1, f"the activity ran {len(STARTS)} times"


CALLS: list[float] = []
FIRST_INSIDE = threading.Event()
LET_FIRST_GO = threading.Event()


@activity
def charge_once(ctx: Any) -> str:
    CALLS.append(time.time())
    if len(CALLS) == 1:  # the first attempt hangs until the test lets it go
        FIRST_INSIDE.set()
        LET_FIRST_GO.wait(30)
        return "first"
    return "second"


@workflow
def pay(ctx: Any):  # type: ignore[no-untyped-def]
    return (yield charge_once())


def test_a_worker_whose_database_connection_dies_is_fenced_and_its_instance_taken_over(
    make_app: Callable[..., App], database_url: str
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("on SQLite the hold is an flock: it is lost only with the process")
    CALLS.clear()
    FIRST_INSIDE.clear()
    LET_FIRST_GO.clear()
    app = make_app(workflows=[pay])  # default lease: 60 s
    other = make_app(workflows=[pay])  # another worker process would do the same
    with app:
        handle = app.start_workflow(pay)
        assert FIRST_INSIDE.wait(10)
        other.start()
        assert app.worker is not None
        cut = app.worker.owner
        sever(database_url, cut)
        started = time.monotonic()
        assert handle.result(timeout=10) == "second"  # taken over, long before 60 s
        assert time.monotonic() - started < 5
        deadline = time.monotonic() + 5
        while app.worker.owner == cut:  # it sees its hold lost and registers again, new id
            assert time.monotonic() < deadline, "the worker did not notice its lost hold"
            time.sleep(0.05)
        # the fenced worker never runs the instance beside its own fenced executor: the other
        # worker took it over; the fenced executor ends its activity, and records nothing
        LET_FIRST_GO.set()
        time.sleep(0.5)
        completed = [
            e for e in app.history(handle.instance_id) if type(e).__name__ == "ActivityCompleted"
        ]
        assert [e.result for e in completed] == ["second"]  # type: ignore[attr-defined]


class _Storage:
    """Answers a heartbeat as the database does after the instance finished meanwhile (its lease
    is gone), and lets the test act between the heartbeat's snapshot and its answer."""

    def __init__(self, meanwhile: Callable[[], None]) -> None:
        self.meanwhile = meanwhile

    def heartbeat(self, ids: list[str], owner: str, **_: Any) -> list[str]:
        self.meanwhile()
        return list(ids)


def test_a_stale_heartbeat_answer_does_not_fence_a_new_run_of_the_same_instance() -> None:
    # The heartbeat sent for run 1 of "x" comes back "lost" (run 1 finished: no lease), but by
    # then this worker claimed "x" again and runs it in a new executor. Fencing that one made
    # its step fail with LeaseLost while nobody else held the instance: the activity ran again
    # (here or in another process) once the lease expired.
    first, second = SimpleNamespace(lost=False), SimpleNamespace(lost=False)
    worker: Worker

    def finish_and_run_again() -> None:
        worker._active["x"] = second  # type: ignore[assignment]

    worker = Worker(
        storage=_Storage(finish_and_run_again),  # type: ignore[arg-type]
        registry=Registry(),
        clock=SystemClock(),
        hooks=HookDispatcher([]),
    )
    worker._active["x"] = first  # type: ignore[assignment]
    worker._heartbeat_once()
    assert second.lost is False
    worker._active["x"] = first  # type: ignore[assignment]
    worker.storage = _Storage(lambda: None)  # type: ignore[assignment]
    worker._heartbeat_once()
    assert first.lost is True  # a run whose lease is really gone is fenced

"""Queues through App on every adapter: enqueue, admission by the workers, limits, stats."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from replaykit import InvalidInput, Workflow, activity, workflow
from replaykit.core.definitions import Registry
from replaykit.core.errors import DuplicateQueueKey, UnknownQueue
from replaykit.runtime.app import App

MakeApp = Callable[..., App]


class Tracker:
    """Records how many activities run at once (the activities' own records)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.starts: list[float] = []

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.starts.append(time.monotonic())

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


def define(registry: Registry, tracker: Tracker, pause: float = 0.05) -> Workflow[Any, Any]:
    @activity
    def work(ctx: Any, n: int) -> int:
        tracker.enter()
        time.sleep(pause)
        tracker.leave()
        return n

    @workflow
    def job(ctx: Any, n: int) -> Any:
        return (yield work(n))

    registry.add_activity(work)
    registry.add_workflow(job)
    return job


def test_a_queue_runs_everything_within_its_concurrency(
    make_app: MakeApp, registry: Registry
) -> None:
    tracker = Tracker()
    job = define(registry, tracker)
    app = make_app(concurrency=8)
    app.queue("q", concurrency=2)
    with app:
        handles = [app.enqueue("q", job, i) for i in range(8)]
        assert [h.result(timeout=30) for h in handles] == list(range(8))
    assert tracker.peak == 2
    assert app.stats()["queues"]["q"]["running"] == 0


def test_start_workflow_with_queue_is_enqueue(make_app: MakeApp, registry: Registry) -> None:
    job = define(registry, Tracker(), pause=0)
    app = make_app()
    app.queue("q")
    with app:
        handle = app.start_workflow(job, 5, queue="q", priority=2, dedup_key="d")
        assert handle.result(timeout=30) == 5
        record = handle.status()
        assert (record.queue, record.priority, record.dedup_key) == ("q", 2, "d")
        assert record.admitted_at is not None and record.version == job.version
        plain = app.enqueue("q", job, 6)  # PostgreSQL's one-statement enqueue (no dedup key)
        assert plain.result(timeout=30) == 6 and plain.status().version == job.version


def test_rate_limit_spaces_the_starts(make_app: MakeApp, registry: Registry) -> None:
    tracker = Tracker()
    job = define(registry, tracker, pause=0)
    app = make_app()
    app.queue("q", rate=(2, 0.5))
    with app:
        handles = [app.enqueue("q", job, i) for i in range(6)]
        for handle in handles:
            handle.result(timeout=30)
    admitted = sorted(h.status().admitted_at or 0.0 for h in handles)
    for i in range(len(admitted) - 2):
        assert admitted[i + 2] - admitted[i] >= 0.5
    assert admitted[-1] - admitted[0] >= 1.0


def test_client_enqueue_raises_typed_errors(make_app: MakeApp, registry: Registry) -> None:
    job = define(registry, Tracker(), pause=0)
    client = make_app(workers=False)
    client.queue("q")
    client.enqueue("q", job, 1, dedup_key="k")
    with pytest.raises(DuplicateQueueKey):
        client.enqueue("q", job, 2, dedup_key="k")
    with pytest.raises(UnknownQueue):
        client.enqueue("other", job, 1)
    with pytest.raises(InvalidInput):
        client.start_workflow(job, 1, priority=3)
    with pytest.raises(InvalidInput):
        client.enqueue("q", job, 1, priority="high")  # type: ignore[arg-type]
    [stats] = client.queue_stats()
    assert (stats.spec.name, stats.queued, stats.running) == ("q", 1, 0)


def test_a_worker_admits_what_a_client_enqueued(make_app: MakeApp, registry: Registry) -> None:
    job = define(registry, Tracker(), pause=0)
    client = make_app(workers=False)
    client.queue("q", concurrency=1)
    handles = [client.enqueue("q", job, i) for i in range(3)]
    worker = make_app()
    worker.queue("q", concurrency=1)
    with worker:
        assert [h.result(timeout=30) for h in handles] == [0, 1, 2]

"""The queue part of the storage contract (declare, enqueue, admit, stats) on every adapter."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from replaykit.core.errors import DuplicateQueueKey, UnknownQueue
from replaykit.core.history import CancelRequested, WorkflowStarted, decode_event
from replaykit.core.queues import QueueSpec, queue_spec
from replaykit.storage import InstanceRecord, Storage

from .helpers import LEASE, OWNER, run_threads, started, step


def enqueue(
    storage: Storage,
    instance_id: str,
    queue: str = "q",
    *,
    now: float = 1.0,
    priority: int = 0,
    dedup_key: str | None = None,
    workflow: str = "wf",
    timeout: float | None = None,
) -> tuple[InstanceRecord, bool]:
    record = InstanceRecord(
        instance_id=instance_id,
        workflow=workflow,
        status="queued",
        created_at=now,
        updated_at=now,
        queue=queue,
        priority=priority,
        dedup_key=dedup_key,
        timeout=timeout,
    )
    return storage.enqueue(record, started(instance_id, workflow))


def admit(
    storage: Storage, *, now: float = 10.0, limit: int = 100, owner: str = OWNER
) -> list[str]:
    return storage.admit(owner, queues=["q"], limit=limit, now=now).admitted


def finish(storage: Storage, instance_id: str, *, now: float = 20.0) -> None:
    assert storage.claim_instance(instance_id, OWNER, lease_seconds=LEASE, now=now)
    storage.commit(step(storage, instance_id, status="completed", output=1, now=now))


def test_a_queued_instance_is_not_claimable_until_admitted(storage: Storage) -> None:
    storage.declare_queue(queue_spec("q"), now=0.0)
    record, created = enqueue(storage, "a")
    assert created and record.status == "queued"
    assert storage.claim(OWNER, limit=10, lease_seconds=LEASE, now=5.0) == []
    assert admit(storage) == ["a"]
    stored = storage.get_instance("a")
    assert stored is not None and stored.status == "pending" and stored.admitted_at == 10.0
    claimed = storage.claim(OWNER, limit=10, lease_seconds=LEASE, now=11.0)
    assert [r.instance_id for r in claimed] == ["a"] and claimed[0].queue == "q"


def test_enqueue_on_an_undeclared_queue_raises_and_stores_nothing(storage: Storage) -> None:
    with pytest.raises(UnknownQueue, match="'nope'"):
        enqueue(storage, "a", "nope")
    assert storage.get_instance("a") is None


def test_enqueue_of_an_existing_id_returns_the_first(storage: Storage) -> None:
    storage.declare_queue(queue_spec("q"), now=0.0)
    enqueue(storage, "a", priority=1)
    record, created = enqueue(storage, "a", priority=9)
    assert not created and record.priority == 1


def test_a_dedup_key_is_refused_while_its_holder_is_unfinished(storage: Storage) -> None:
    storage.declare_queue(queue_spec("q"), now=0.0)
    enqueue(storage, "a", dedup_key="k")
    with pytest.raises(DuplicateQueueKey) as caught:
        enqueue(storage, "b", dedup_key="k")
    assert caught.value.instance_id == "a" and caught.value.key == "k"
    assert storage.get_instance("b") is None
    assert admit(storage) == ["a"]
    with pytest.raises(DuplicateQueueKey):  # pending (admitted) still holds the key
        enqueue(storage, "b", dedup_key="k")
    finish(storage, "a")
    assert enqueue(storage, "b", dedup_key="k")[1]  # free again once "a" has finished


def test_concurrent_enqueues_with_one_key_store_one(
    storage: Storage, open_new: Callable[..., Storage]
) -> None:
    storage.declare_queue(queue_spec("q"), now=0.0)
    others = [open_new() for _ in range(4)]

    def attempt(i: int) -> bool:
        try:
            return enqueue(others[i], f"i{i}", dedup_key="same")[1]
        except DuplicateQueueKey:
            return False

    assert sorted(run_threads(4, attempt)) == [False, False, False, True]


def test_admission_takes_higher_priority_first_then_fifo(storage: Storage) -> None:
    storage.declare_queue(queue_spec("q", concurrency=3), now=0.0)
    enqueue(storage, "low", now=1.0, priority=0)
    enqueue(storage, "old-high", now=2.0, priority=5)
    enqueue(storage, "new-high", now=3.0, priority=5)
    enqueue(storage, "mid", now=4.0, priority=1)
    assert admit(storage) == ["old-high", "new-high", "mid"]


def test_global_concurrency_counts_admitted_unfinished_instances(storage: Storage) -> None:
    storage.declare_queue(queue_spec("q", concurrency=2), now=0.0)
    for i in range(5):
        enqueue(storage, f"i{i}", now=float(i))
    assert admit(storage, owner="w1") == ["i0", "i1"]
    assert admit(storage, owner="w2") == []  # another worker sees the same two running
    finish(storage, "i0")
    assert admit(storage, owner="w2", now=21.0) == ["i2"]


def test_per_worker_limit_counts_what_each_worker_admitted(storage: Storage) -> None:
    storage.declare_queue(queue_spec("q", per_worker=1), now=0.0)
    for i in range(4):
        enqueue(storage, f"i{i}", now=float(i))
    assert admit(storage, owner="w1") == ["i0"]
    assert admit(storage, owner="w1") == []
    assert admit(storage, owner="w2") == ["i1"]


def test_rate_limit_admits_n_per_period_and_says_when_next(storage: Storage) -> None:
    storage.declare_queue(queue_spec("q", rate=(2, 1.0)), now=0.0)
    for i in range(5):
        enqueue(storage, f"i{i}", now=float(i))
    first = storage.admit(OWNER, queues=["q"], limit=10, now=10.0)
    assert first.admitted == ["i0", "i1"] and first.retry_at is None
    held = storage.admit(OWNER, queues=["q"], limit=10, now=10.5)
    assert held.admitted == [] and held.retry_at == 11.0
    assert admit(storage, now=11.0) == ["i2", "i3"]


def test_admission_respects_the_limit_and_the_workflows(storage: Storage) -> None:
    storage.declare_queue(queue_spec("q"), now=0.0)
    enqueue(storage, "other", workflow="other")
    enqueue(storage, "a", now=2.0)
    enqueue(storage, "b", now=3.0)
    result = storage.admit(OWNER, queues=["q"], limit=1, now=10.0, workflows=["wf"])
    assert result.admitted == ["a"]


def test_concurrent_admissions_never_exceed_the_concurrency(
    storage: Storage, open_new: Callable[..., Storage]
) -> None:
    storage.declare_queue(queue_spec("q", concurrency=3, rate=(5, 60.0)), now=0.0)
    for i in range(20):
        enqueue(storage, f"i{i}", now=float(i))
    others = [open_new() for _ in range(6)]
    admitted = run_threads(6, lambda i: admit(others[i], owner=f"w{i}", now=30.0 + i))
    assert sum(len(ids) for ids in admitted) == 3


def test_redeclaring_a_queue_replaces_its_limits(storage: Storage) -> None:
    storage.declare_queue(queue_spec("q", concurrency=1), now=0.0)
    storage.declare_queue(queue_spec("q", concurrency=4, rate=(3, 2.0)), now=1.0)
    [stats] = storage.queue_stats()
    assert stats.spec == QueueSpec(name="q", concurrency=4, rate_limit=3, rate_period=2.0)


def test_stats_count_queued_and_running_per_queue(storage: Storage) -> None:
    storage.declare_queue(queue_spec("q", concurrency=1), now=0.0)
    storage.declare_queue(queue_spec("idle"), now=0.0)
    for i in range(3):
        enqueue(storage, f"i{i}", now=float(i))
    admit(storage)
    by_name = {s.spec.name: (s.queued, s.running) for s in storage.queue_stats()}
    assert by_name == {"idle": (0, 0), "q": (2, 1)}
    assert storage.stats()["queues"]["q"]["queued"] == 2
    assert storage.stats()["queues"]["q"]["concurrency"] == 1


def test_cancelling_a_queued_instance_makes_it_runnable(storage: Storage) -> None:
    storage.declare_queue(queue_spec("q", concurrency=1), now=0.0)
    enqueue(storage, "a")
    enqueue(storage, "b", now=2.0)
    admit(storage)
    storage.request_cancel("b", "no", now=12.0)
    stored = storage.get_instance("b")  # runnable (stored as pending), reads cancelling
    assert stored is not None and stored.status == "cancelling"
    assert [r.instance_id for r in storage.list_instances(status="cancelling")] == ["b"]
    assert len(storage.load_inbox("b")) == 1


def test_admission_starts_the_deadline_of_a_queued_timeout(storage: Storage) -> None:
    storage.declare_queue(queue_spec("q"), now=0.0)
    enqueue(storage, "plain", timeout=30.0)  # PostgreSQL: the one-statement enqueue
    enqueue(storage, "keyed", dedup_key="k", timeout=45.0)  # the general path
    enqueue(storage, "none")
    queued = storage.get_instance("plain")
    assert queued is not None and (queued.timeout, queued.deadline) == (30.0, None)
    assert storage.registered_steps("plain") == []  # no deadline timer while queued
    assert sorted(admit(storage, now=10.0)) == ["keyed", "none", "plain"]
    for instance_id, deadline in (("plain", 40.0), ("keyed", 55.0), ("none", None)):
        record = storage.get_instance(instance_id)
        assert record is not None and record.deadline == deadline
        first = decode_event(storage.load_history(instance_id)[0])
        assert isinstance(first, WorkflowStarted) and first.deadline == deadline
        assert storage.registered_steps(instance_id) == ([] if deadline is None else [0])


def test_a_deadline_timer_firing_makes_the_instance_read_cancelling(storage: Storage) -> None:
    storage.declare_queue(queue_spec("q"), now=0.0)
    enqueue(storage, "a", timeout=30.0)
    admit(storage, now=10.0)
    assert storage.fire_due_timers(now=39.0) == []
    assert storage.fire_due_timers(now=40.0) == ["a"]
    [item] = storage.load_inbox("a")
    event = decode_event(item.event)
    assert isinstance(event, CancelRequested) and event.timed_out
    record = storage.get_instance("a")
    assert record is not None and record.status == "cancelling"
    assert record.cancel_requested_at == 40.0

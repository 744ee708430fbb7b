"""Small builders shared by the storage tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from replaykit.core.history import (
    EventTimedOut,
    HistoryEvent,
    TimerFired,
    WorkflowStarted,
    decode_event,
    encode_event,
)
from replaykit.storage import InstanceRecord, StepCommit, Storage, TimerSpec, WaitSpec

OWNER = "worker-1"
LEASE = 30.0


def started(instance_id: str, workflow: str = "wf") -> bytes:
    return encode_event(WorkflowStarted(workflow=workflow, instance_id=instance_id))


def create(
    storage: Storage, instance_id: str, *, now: float = 1.0, workflow: str = "wf", **fields: Any
) -> InstanceRecord:
    record = InstanceRecord(
        instance_id=instance_id,
        workflow=workflow,
        status="pending",
        created_at=now,
        updated_at=now,
        **fields,
    )
    stored, _ = storage.create_instance(record, started(instance_id, workflow))
    return stored


def running(storage: Storage, instance_id: str, *, now: float = 1.0, **fields: Any) -> None:
    """Create an instance and claim it for OWNER."""
    create(storage, instance_id, now=now, **fields)
    assert storage.claim_instance(instance_id, OWNER, lease_seconds=LEASE, now=now)


def step(storage: Storage, instance_id: str, *, owner: str = OWNER, **fields: Any) -> StepCommit:
    """A StepCommit continuing the stored history length."""
    record = storage.get_instance(instance_id)
    assert record is not None
    fields.setdefault("now", 2.0)
    fields.setdefault("lease_token", record.lease_token)
    return StepCommit(
        instance_id=instance_id,
        owner=owner,
        lease_expires_at=fields["now"] + LEASE,
        history_len=record.history_len,
        **fields,
    )


def lease_ends(record: InstanceRecord | None, expected: float) -> bool:
    """Whether ``record``'s lease ends at ``expected``, counted from the write: plus the (small)
    time the call waited before writing."""
    assert record is not None and record.lease_expires_at is not None
    return expected <= record.lease_expires_at < expected + 1.0


def wait_event(
    storage: Storage,
    instance_id: str,
    key: str,
    *,
    step_no: int = 1,
    match: dict[str, Any] | None = None,
    timeout_at: float | None = None,
) -> None:
    """Commit a wait for an event (optionally with a timeout timer) and park the instance."""
    timers = []
    if timeout_at is not None:
        event = encode_event(EventTimedOut(step=step_no, name=key))
        timers.append(TimerSpec(step=step_no, fire_at=timeout_at, event=event, is_timeout=True))
    wait = WaitSpec(step=step_no, kind="event", key=key, match=match)
    storage.commit(step(storage, instance_id, waits=[wait], timers=timers, status="waiting"))


def wait_message(
    storage: Storage, instance_id: str, channel: str, *, step_no: int = 1, now: float = 2.0
) -> None:
    wait = WaitSpec(step=step_no, kind="message", key=channel)
    storage.commit(step(storage, instance_id, waits=[wait], status="waiting", now=now))


def timer(step_no: int, fire_at: float) -> TimerSpec:
    return TimerSpec(step=step_no, fire_at=fire_at, event=encode_event(TimerFired(step=step_no)))


def inbox_events(storage: Storage, instance_id: str) -> list[HistoryEvent]:
    return [decode_event(item.event) for item in storage.load_inbox(instance_id)]


def history(storage: Storage, instance_id: str) -> list[HistoryEvent]:
    return [decode_event(event) for event in storage.load_history(instance_id)]


def run_threads(count: int, target: Callable[[int], Any]) -> list[Any]:
    """Run ``target(i)`` in ``count`` threads started together; return results in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results

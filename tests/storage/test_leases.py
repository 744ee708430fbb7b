"""The lease contract (every adapter): a token per claim fences older claims, a worker's claim
skips what it runs, and lease ends count from the write, not from before waiting for it."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from replaykit.core.errors import LeaseLost
from replaykit.core.history import TimerFired, encode_event
from replaykit.storage import InstanceRecord, Storage

from .helpers import LEASE, OWNER, create, running, started, step


@contextmanager
def row_held(url: str, instance_id: str, seconds: float) -> Iterator[None]:
    """Another connection holds the instance's row (on SQLite: the write lock) for ``seconds``
    from the moment the block is entered."""
    ready = threading.Event()

    def hold() -> None:
        if url.startswith("sqlite"):
            conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            ready.set()
            time.sleep(seconds)
            conn.execute("ROLLBACK")
            conn.close()
            return
        if url.startswith("mysql"):
            from storage_adapters.mysql.adapter import connect_args, open_connection

            my = open_connection(connect_args(url))
            my.cursor().execute(
                "SELECT 1 FROM rk_instances WHERE instance_id = %s FOR UPDATE", (instance_id,)
            )
            ready.set()
            time.sleep(seconds)
            my.rollback()
            my.close()
            return
        import psycopg

        with psycopg.connect(url) as pg:
            pg.execute(
                "SELECT 1 FROM rk_instances WHERE instance_id = %s FOR UPDATE", [instance_id]
            )
            ready.set()
            time.sleep(seconds)
            pg.rollback()

    thread = threading.Thread(target=hold)
    thread.start()
    assert ready.wait(10)
    try:
        yield
    finally:
        thread.join()


def test_each_claim_gets_a_new_lease_token(storage: Storage) -> None:
    create(storage, "a")
    first = storage.claim_instance("a", OWNER, lease_seconds=LEASE, now=1.0)
    again = storage.claim_instance("a", OWNER, lease_seconds=LEASE, now=2.0)
    assert first is not None and again is not None
    assert first.lease_token and again.lease_token and first.lease_token != again.lease_token
    stored = storage.get_instance("a")
    assert stored is not None and stored.lease_token == again.lease_token


def test_a_step_commits_only_under_the_token_of_its_claim(storage: Storage) -> None:
    create(storage, "a")
    first = storage.claim("w", limit=1, lease_seconds=LEASE, now=1.0)[0]
    # the lease ends under its own worker (a commit that waited too long) and the same worker
    # claims it again: the first executor must not commit any more
    second = storage.claim("w", limit=1, lease_seconds=LEASE, now=1.0 + LEASE + 1)[0]
    assert second.lease_owner == first.lease_owner == "w"
    event = encode_event(TimerFired(step=1))
    stale = step(storage, "a", owner="w", lease_token=first.lease_token, events=[event])
    with pytest.raises(LeaseLost):
        storage.commit(stale)
    assert len(storage.load_history("a")) == 1
    storage.commit(step(storage, "a", owner="w", lease_token=second.lease_token, events=[event]))
    assert len(storage.load_history("a")) == 2


def test_a_step_without_a_token_cannot_commit_under_a_claim(storage: Storage) -> None:
    create(storage, "a")
    storage.claim("w", limit=1, lease_seconds=LEASE, now=1.0)
    with pytest.raises(LeaseLost):
        storage.commit(step(storage, "a", owner="w", lease_token=None, events=[b"{}"]))


def test_claim_never_takes_an_instance_it_is_told_to_exclude(storage: Storage) -> None:
    running(storage, "a", now=1.0)
    create(storage, "b", now=2.0)
    before = storage.get_instance("a")
    late = 1.0 + LEASE + 100  # a's lease has ended
    claimed = storage.claim(OWNER, limit=5, lease_seconds=LEASE, now=late, exclude=["a"])
    assert [r.instance_id for r in claimed] == ["b"]
    assert storage.get_instance("a") == before  # not claimed again: same token, same end
    assert storage.claim(OWNER, limit=5, lease_seconds=LEASE, now=late, exclude=["a", "b"]) == []


def test_a_commit_that_waited_to_write_counts_its_lease_from_the_write(
    storage: Storage, storage_url: str
) -> None:
    running(storage, "a", now=time.time())
    commit = step(
        storage, "a", now=time.time(), lease_seconds=1.0, events=[encode_event(TimerFired(step=1))]
    )
    with row_held(storage_url, "a", 0.8):
        storage.commit(commit)
    record = storage.get_instance("a")
    assert record is not None and record.lease_expires_at is not None
    # counted from before the wait, the lease would end 1 s after `now`: 0.2 s after the write
    assert record.lease_expires_at - commit.now >= 1.0 + 0.7


def test_a_heartbeat_that_waited_to_write_counts_its_lease_from_the_write(
    storage: Storage, storage_url: str
) -> None:
    running(storage, "a", now=time.time())
    now = time.time()
    with row_held(storage_url, "a", 0.8):
        assert storage.heartbeat(["a"], OWNER, lease_seconds=1.0, now=now) == []
    record = storage.get_instance("a")
    assert record is not None and record.lease_expires_at is not None
    assert record.lease_expires_at - now >= 1.0 + 0.7


def test_an_instance_created_with_a_lease_keeps_its_token(storage: Storage) -> None:
    record = InstanceRecord(
        instance_id="a",
        workflow="wf",
        status="running",
        lease_owner="w",
        lease_token="t1",
        lease_expires_at=100.0,
    )
    stored, created = storage.create_instance(record, started("a"))
    assert created and stored.lease_token == "t1"
    storage.commit(step(storage, "a", owner="w", lease_token="t1", events=[b"{}"]))
    with pytest.raises(LeaseLost):
        storage.commit(step(storage, "a", owner="w", lease_token="t2", events=[b"{}"]))

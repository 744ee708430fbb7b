"""The liveness contract (every adapter): a worker's death is seen through a hold that the
database or the OS frees when its process dies, and its instances are released at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from replaykit.storage import Storage, WorkerHold

from .helpers import LEASE, create, run_threads, running

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def killed_worker(storage: Storage, storage_url: str) -> Iterator[Callable[..., None]]:
    """``kill(worker_id, *instance_ids)``: a process registers the worker, claims the instances
    (an hour's lease), and is killed with SIGKILL."""
    procs: list[subprocess.Popen[str]] = []

    def kill(worker_id: str, *instance_ids: str) -> None:
        for instance_id in instance_ids:
            create(storage, instance_id)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.storage.liveness_proc",
                storage_url,
                worker_id,
                *instance_ids,
            ],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()

    yield kill
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def reap_until(storage: Storage, want: set[str], seconds: float = 5.0) -> tuple[list[str], float]:
    """Reap until ``want`` is released (the server sees a dropped connection a moment later);
    the ids released, and how long it took."""
    started = time.monotonic()
    released: list[str] = []
    while set(released) < want and time.monotonic() - started < seconds:
        released += storage.reap_dead_workers()
        time.sleep(0.02)
    return released, time.monotonic() - started


def test_the_instances_of_a_killed_worker_are_released_at_once(
    storage: Storage, killed_worker: Callable[..., None]
) -> None:
    killed_worker("w-dead", "a", "b")
    released, took = reap_until(storage, {"a", "b"})
    assert sorted(released) == ["a", "b"] and took < 2.0
    for instance_id in "ab":
        record = storage.get_instance(instance_id)
        assert record is not None
        assert (record.status, record.lease_owner, record.lease_token) == ("pending", None, None)
    # claimable by anyone now, long before the lease would have ended
    claimed = storage.claim("w2", limit=5, lease_seconds=LEASE, now=time.time())
    assert sorted(r.instance_id for r in claimed) == ["a", "b"]
    assert storage.reap_dead_workers() == []  # unregistered: released once


def test_a_restarted_worker_takes_over_its_predecessor_as_it_registers(
    storage: Storage, killed_worker: Callable[..., None], open_new: Callable[..., Storage]
) -> None:
    killed_worker("w-old", "a")
    restarted = open_new()
    restarted.register_worker("w-new", now=time.time())
    released, _ = reap_until(restarted, {"a"})
    assert released == ["a"]


def live_worker(storage: Storage, worker_id: str, instance_id: str) -> WorkerHold:
    """Register ``worker_id`` on ``storage`` and let it claim a new instance."""
    hold = storage.register_worker(worker_id, now=1.0)
    create(storage, instance_id)
    assert storage.claim_instance(instance_id, worker_id, lease_seconds=LEASE, now=1.0)
    return hold


def test_a_live_worker_is_never_taken_for_dead(
    storage: Storage, open_new: Callable[..., Storage]
) -> None:
    other = open_new()
    hold = live_worker(other, "w-live", "a")
    storage.register_worker("w-reaper", now=1.0)
    assert storage.reap_dead_workers() == []
    assert other.reap_dead_workers() == []  # nor by itself
    assert hold.alive()
    record = storage.get_instance("a")
    assert record is not None and (record.status, record.lease_owner) == ("running", "w-live")


def test_a_worker_that_stops_cleanly_is_unregistered(
    storage: Storage, open_new: Callable[..., Storage]
) -> None:
    hold = live_worker(open_new(), "w-stops", "a")
    hold.release()
    hold.release()  # idempotent
    assert not hold.alive()
    assert storage.reap_dead_workers() == []  # not registered: its leases simply run out
    record = storage.get_instance("a")
    assert record is not None and record.lease_owner == "w-stops"


def test_owners_that_never_registered_are_left_to_lease_expiry(storage: Storage) -> None:
    running(storage, "a")  # leased to OWNER, a worker of an older version: no hold
    storage.register_worker("w", now=1.0)
    assert storage.reap_dead_workers() == []
    record = storage.get_instance("a")
    assert record is not None and record.status == "running"


def test_concurrent_reapers_release_a_dead_worker_once(
    storage: Storage, killed_worker: Callable[..., None], open_new: Callable[..., Storage]
) -> None:
    ids = [f"i{n}" for n in range(6)]
    killed_worker("w-dead", *ids)
    time.sleep(0.5)  # the server has seen the connection go
    reapers = [open_new() for _ in range(4)]
    released = run_threads(4, lambda n: reapers[n].reap_dead_workers())
    flat = [i for batch in released for i in batch]
    assert sorted(flat) == ids


def sever(url: str, worker_id: str) -> None:
    """End the dedicated connection that holds ``worker_id``'s lock, from the server side."""
    if url.startswith("mysql"):
        from storage_adapters.mysql.adapter import connect_args, open_connection

        conn = open_connection(connect_args(url))
        try:
            cursor = conn.cursor()
            cursor.execute(
                "SELECT IS_USED_LOCK(lock_key) FROM rk_workers WHERE worker_id = %s", (worker_id,)
            )
            (connection_id,) = cursor.fetchone()
            cursor.execute(f"KILL {int(connection_id)}")
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            [f"replaykit worker {worker_id}"],
        )


def test_a_worker_whose_connection_died_loses_its_hold_and_is_taken_for_dead(
    storage: Storage, open_new: Callable[..., Storage], adapter: str, storage_url: str
) -> None:
    if adapter.startswith("sqlite"):
        pytest.skip("an flock is lost only with its process (see the killed-worker tests)")
    hold = live_worker(open_new(), "w-cut", "a")
    assert hold.alive()
    sever(storage_url, "w-cut")
    deadline = time.monotonic() + 5
    while hold.alive():
        assert time.monotonic() < deadline, "the hold still answers"
        time.sleep(0.05)
    released, _ = reap_until(storage, {"a"})
    assert released == ["a"]

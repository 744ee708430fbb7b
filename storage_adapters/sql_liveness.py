"""Liveness: a worker's death is detected, not waited out.

Every worker holds, for its whole life, a lock that the database or the operating system frees
the moment its process dies (the dialect's :class:`Hold`): a session-level advisory lock on a
dedicated PostgreSQL connection, ``GET_LOCK`` on a dedicated MySQL connection, an ``flock`` on
a file of its own next to a SQLite database. ``rk_workers`` lists the registered workers and
their lock keys. A worker whose lock someone else can take is dead: :func:`reap` makes the
instances it held ``pending`` again (lease cleared, so any worker claims them at once) and
unregisters it. Workers call it every ``liveness_interval`` and once when they start, so a
restarted process takes over its dead predecessor's instances at once.

Lease expiry stays the fallback for what a lock cannot see (a host that vanished from the
network keeps its connection, and so its lock, until TCP gives up): instances of an owner that
is not registered (or whose lock is held) are taken over only when their lease ends.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from .sql_steps import SqlTx, placeholders

T = TypeVar("T")


class Hold(Protocol):
    """A dialect's liveness lock, taken for one worker (``SqlStorage._take_hold``)."""

    #: what ``rk_workers.lock_key`` stores, for others to test the lock with
    lock_key: Any

    def alive(self) -> bool:
        """Whether the lock is still held (its connection answers); False for good once lost."""

    def close(self) -> None:
        """Free the lock (idempotent)."""


class ConnectionHold:
    """A hold kept by a dedicated database connection: alive while that connection answers
    (:meth:`_ping`); the server frees the lock when the connection ends."""

    lock_key: Any

    def __init__(self, conn: Any, errors: tuple[type[BaseException], ...]) -> None:
        self._conn = conn
        self._errors = errors
        self._lock = threading.Lock()
        self._alive = True

    def _ping(self) -> None:
        """A round trip on the connection; raises one of ``errors`` when it is gone."""
        raise NotImplementedError

    def alive(self) -> bool:
        with self._lock:
            if self._alive:
                try:
                    self._ping()
                except self._errors:
                    self._alive = False
                    self._close_quietly()
            return self._alive

    def close(self) -> None:
        with self._lock:
            self._alive = False
            self._close_quietly()

    def _close_quietly(self) -> None:
        with contextlib.suppress(*self._errors):  # already gone: so is its lock
            self._conn.close()


class Dialect(Protocol):
    """What the liveness algorithms need from an adapter (``SqlStorage`` provides it)."""

    _workers: dict[str, Registration]

    def _run(self, work: Callable[[SqlTx], T], *, write: bool = ..., exclusive: bool = ...) -> T:
        """Run ``work`` in one transaction, retrying busy/deadlock errors."""

    def _read(self, work: Callable[[SqlTx], T]) -> T: ...

    def _take_hold(self, worker_id: str) -> Hold: ...

    def _find_dead(self, rows: list[dict[str, Any]]) -> tuple[list[str], Callable[[], None]]:
        """Of the registered ``rows`` (worker_id, lock_key), the workers whose lock is free, and
        what to do once their instances are released (e.g. free a lock taken to test them)."""

    def _confirm_dead(self, tx: SqlTx, worker_ids: Sequence[str]) -> list[str]:
        """In the transaction that releases their instances: those of ``worker_ids`` still
        registered and dead (locked for this transaction where the dialect can, so two workers
        do not release the same instances)."""


class Registration:
    """A registered worker's hold: :class:`replaykit.storage.WorkerHold`."""

    def __init__(self, storage: Dialect, worker_id: str, hold: Hold) -> None:
        self.worker_id = worker_id
        self._storage = storage
        self._hold = hold
        self._released = False
        self._lock = threading.Lock()

    def alive(self) -> bool:
        with self._lock:
            return not self._released and self._hold.alive()

    def release(self) -> None:
        """Unregister, then free the lock (a clean stop: nobody takes this worker for dead). A
        lost hold stays registered: the others find it dead and release its instances."""
        with self._lock:
            if self._released:
                return
            self._released = True
            intact = self._hold.alive()
        self._storage._workers.pop(self.worker_id, None)
        try:
            if intact:
                self._storage._run(
                    lambda tx: tx.exec("DELETE FROM rk_workers WHERE worker_id = ?", self.worker_id)
                )
        finally:
            self._hold.close()


def register(storage: Dialect, worker_id: str, *, now: float) -> Registration:
    """Take the worker's hold, then register it (in this order: a registered worker always
    holds its lock while it lives)."""
    hold = storage._take_hold(worker_id)
    try:
        storage._run(
            lambda tx: tx.exec(
                "INSERT INTO rk_workers (worker_id, lock_key, pid, host, started_at) "
                "VALUES (?, ?, ?, ?, ?)",
                worker_id,
                hold.lock_key,
                os.getpid(),
                socket.gethostname()[:255],
                now,
            )
        )
    except BaseException:
        hold.close()
        raise
    registration = Registration(storage, worker_id, hold)
    storage._workers[worker_id] = registration
    return registration


def reap(storage: Dialect) -> list[str]:
    """Release the instances of every dead registered worker and unregister it; return the ids
    of the instances released. Costs one read when nobody died."""
    own = set(storage._workers)
    rows = [
        row
        for row in storage._read(lambda tx: tx.rows("SELECT worker_id, lock_key FROM rk_workers"))
        if row["worker_id"] not in own
    ]
    if not rows:
        return []
    dead, done = storage._find_dead(rows)
    try:
        if not dead:
            return []
        return storage._run(lambda tx: _release_dead(tx, storage._confirm_dead(tx, dead)))
    finally:
        done()


def _release_dead(tx: SqlTx, dead: Sequence[str]) -> list[str]:
    if not dead:
        return []
    listed = placeholders(dead)
    held = f"status = 'running' AND lease_owner IN ({listed})"
    select = f"SELECT instance_id FROM rk_instances WHERE {held}{{FOR_UPDATE}}"
    ids = [row["instance_id"] for row in tx.rows(select, *dead)]
    if ids:
        tx.exec(
            "UPDATE rk_instances SET status = 'pending', lease_owner = NULL, lease_token = NULL, "
            f"lease_expires_at = NULL WHERE {held}",
            *dead,
        )
        tx.notify("runnable")
    tx.exec(f"DELETE FROM rk_workers WHERE worker_id IN ({listed})", *dead)
    return ids

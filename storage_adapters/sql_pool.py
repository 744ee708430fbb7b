"""The connection pool of the PostgreSQL and MySQL adapters: small, thread-safe, newest first.

A thread takes the connection returned last (LIFO, as PgBouncer reuses server connections by
default). A process that does one thing at a time so keeps using the same one or two
connections, whose session caches are warm: on PostgreSQL a statement's first use on a
connection parses it, compiles the PL/pgSQL functions it calls and loads the catalog entries of
their tables (about 8 ms for the targeted-event hand-off), and its next four executions are
planned anew each time. Handing the connections out in turn (FIFO, psycopg_pool's order) made a
process that had once grown its pool in a burst pay those costs again and again.

Connections idle for ``max_idle`` seconds (the oldest, at the bottom of the stack) are closed,
down to ``min_size``, so a pool grown by a burst shrinks again.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from replaykit.core.errors import StorageError

C = TypeVar("C")


class ConnectionPool(Generic[C]):
    """Up to ``max_size`` connections shared by threads; idle ones are reused newest first.
    ``connect()`` opens one, ``close(conn)`` closes one (without raising for a connection the
    server dropped)."""

    def __init__(
        self,
        connect: Callable[[], C],
        close: Callable[[C], None],
        *,
        what: str,
        max_size: int,
        timeout: float,
        min_size: int = 0,
        max_idle: float = 600.0,
    ) -> None:
        self._connect = connect
        self._close = close
        self._what = what
        self._max_size = max_size
        self._min_size = min_size
        self._timeout = timeout
        self._max_idle = max_idle
        self._idle: list[C] = []  # the newest last
        self._idle_since: list[float] = []  # when each of _idle was returned
        self._size = 0
        self._closed = False
        self._lock = threading.Lock()  # taken directly on the common paths (cheaper in CPython)
        self._cond = threading.Condition(self._lock)  # a get() waiting for a connection
        self._waiters = 0  # how many get()s wait on _cond
        # a pool dropped without close() (e.g. a storage an App reopened after stop()) closes
        # its idle connections when it is garbage-collected, or at exit
        weakref.finalize(self, _close_idle, self._cond, self._idle, self._idle_since, close)

    def get(self) -> C:
        """The idle connection returned last, a new one while fewer than ``max_size`` exist,
        else the next one returned within ``timeout`` s (StorageError after)."""
        with self._lock:
            if self._idle and not self._closed:  # the common case: no clock, no wait
                self._idle_since.pop()
                return self._idle.pop()
            deadline = time.monotonic() + self._timeout
            while not self._idle and self._size >= self._max_size:
                left = deadline - time.monotonic()
                if self._closed or left <= 0 or not self._wait(left):
                    raise StorageError(
                        f"no {self._what} connection free after {self._timeout:.0f} s "
                        f"(max_pool={self._max_size}): raise max_pool or lower concurrency"
                    )
            if self._closed:
                raise StorageError(f"the {self._what} storage is closed")
            if self._idle:
                self._idle_since.pop()
                return self._idle.pop()
            self._size += 1
        try:
            return self._connect()
        except BaseException:
            self._discard(None)
            raise

    def _wait(self, timeout: float) -> bool:
        """(Under the lock) wait up to ``timeout`` s for a put, a discard or close()."""
        self._waiters += 1
        try:
            return self._cond.wait(timeout)
        finally:
            self._waiters -= 1

    def put(self, conn: C, *, broken: bool = False) -> None:
        """Give ``conn`` back (closed instead when ``broken``); closes connections idle for
        longer than ``max_idle``."""
        with self._lock:
            kept = not broken and not self._closed
            stale = self._shelve(conn) if kept else []
        for old in stale:
            self._close(old)
        if not kept:
            self._discard(conn)

    def _shelve(self, conn: C) -> list[C]:
        """(Under the lock) ``conn`` on top of the idle stack; returns the connections taken off
        its bottom for being idle too long."""
        now = time.monotonic()
        self._idle.append(conn)
        self._idle_since.append(now)
        stale = []
        while len(self._idle) > self._min_size and self._idle_since[0] < now - self._max_idle:
            self._idle_since.pop(0)
            stale.append(self._idle.pop(0))
        self._size -= len(stale)
        if self._waiters:  # Condition.notify() costs even when nobody waits
            self._cond.notify()
        return stale

    def _discard(self, conn: C | None) -> None:
        if conn is not None:
            self._close(conn)
        with self._cond:
            self._size -= 1
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._size -= len(self._idle)
            self._cond.notify_all()
        _close_idle(self._cond, self._idle, self._idle_since, self._close)


def _close_idle(
    lock: threading.Condition, idle: list[C], since: list[float], close: Callable[[C], None]
) -> None:
    """Take every idle connection off the stack (under the pool's lock) and close it."""
    with lock:
        taken = list(idle)
        idle.clear()
        since.clear()
    for conn in taken:
        close(conn)

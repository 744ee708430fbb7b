"""The connection pool of the PostgreSQL and MySQL adapters (storage_adapters.sql_pool)."""

from __future__ import annotations

import gc
import itertools
import threading
import time

import pytest

from replaykit.core.errors import StorageError
from storage_adapters.sql_pool import ConnectionPool


class Conn:
    def __init__(self, number: int) -> None:
        self.number = number
        self.closed = False


def make_pool(
    *, max_size: int = 4, timeout: float = 1.0, min_size: int = 0, max_idle: float = 600.0
) -> tuple[ConnectionPool[Conn], list[Conn]]:
    """A pool of fake connections, and every connection it opened, in order."""
    opened: list[Conn] = []
    numbers = itertools.count()

    def connect() -> Conn:
        opened.append(Conn(next(numbers)))
        return opened[-1]

    def close(conn: Conn) -> None:
        conn.closed = True

    pool = ConnectionPool(
        connect,
        close,
        what="Test",
        max_size=max_size,
        timeout=timeout,
        min_size=min_size,
        max_idle=max_idle,
    )
    return pool, opened


def test_the_connection_returned_last_is_handed_out_first() -> None:
    """Newest first: one thread at a time keeps using one warm connection, whatever number a
    burst opened (handed out in turn, each would pay its cold caches again)."""
    pool, opened = make_pool()
    burst = [pool.get() for _ in range(3)]
    for conn in burst:
        pool.put(conn)
    assert len(opened) == 3
    for _ in range(5):
        conn = pool.get()
        assert conn is burst[-1]
        pool.put(conn)


def test_connections_idle_longer_than_max_idle_are_closed_down_to_min_size() -> None:
    pool, opened = make_pool(max_idle=0.0, min_size=1)
    burst = [pool.get() for _ in range(3)]
    for conn in burst:
        pool.put(conn)
    # each return closes the connections idle for longer than max_idle, the oldest first,
    # keeping min_size
    assert [conn.closed for conn in opened] == [True, True, False]
    assert pool.get() is burst[-1]


def test_a_broken_connection_is_closed_and_its_place_freed() -> None:
    pool, opened = make_pool(max_size=1)
    conn = pool.get()
    pool.put(conn, broken=True)
    assert conn.closed
    fresh = pool.get()  # max_size 1: only possible because the broken one's place is free
    assert fresh is not conn and len(opened) == 2


def test_a_thread_waits_for_a_connection_when_all_are_taken() -> None:
    pool, _ = make_pool(max_size=1, timeout=5.0)
    held = pool.get()
    got: list[Conn] = []
    waiter = threading.Thread(target=lambda: got.append(pool.get()))
    waiter.start()
    pool.put(held)
    waiter.join(5)
    assert got == [held]


def test_each_return_wakes_a_thread_already_waiting() -> None:
    """put() notifies only when a get() waits (it counts them): two threads that wait at once
    are each woken by one return, long before their timeout."""
    pool, _ = make_pool(max_size=2, timeout=30.0)
    held = [pool.get(), pool.get()]
    got: list[Conn] = []
    waiters = [threading.Thread(target=lambda: got.append(pool.get())) for _ in range(2)]
    for waiter in waiters:
        waiter.start()
    deadline = time.monotonic() + 5
    while pool._waiters < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert pool._waiters == 2
    for conn in held:
        pool.put(conn)
    for waiter in waiters:
        waiter.join(5)
    assert sorted(conn.number for conn in got) == [0, 1] and pool._waiters == 0


def test_no_connection_free_within_the_timeout_is_a_storage_error() -> None:
    pool, _ = make_pool(max_size=1, timeout=0.05)
    pool.get()
    with pytest.raises(StorageError, match="no Test connection free after"):
        pool.get()


def test_a_failed_connect_frees_its_place() -> None:
    calls = itertools.count()

    def connect() -> Conn:
        if next(calls) == 0:
            raise OSError("refused")
        return Conn(1)

    pool: ConnectionPool[Conn] = ConnectionPool(
        connect, lambda conn: None, what="Test", max_size=1, timeout=0.05
    )
    with pytest.raises(OSError):
        pool.get()
    assert pool.get().number == 1


def test_closing_the_pool_closes_the_idle_connections() -> None:
    pool, opened = make_pool()
    taken = pool.get()
    pool.put(pool.get())
    pool.close()
    assert [conn.closed for conn in opened] == [False, True]
    pool.put(taken)  # returned after the close: closed, not kept
    assert taken.closed
    with pytest.raises(StorageError, match="closed"):
        pool.get()


def test_a_pool_dropped_without_close_closes_its_idle_connections() -> None:
    pool, opened = make_pool()
    pool.put(pool.get())
    del pool
    gc.collect()
    assert [conn.closed for conn in opened] == [True]

"""What the benchmarks share: the benchmark workflows and the databases' raw commit limits.

Used by ``bench_runtime.py`` and by ``compare/`` (its replaykit runner and its driver).
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from replaykit import WaitEvent, activity, workflow


@activity
def step_one(ctx: Any, x: int) -> int:
    return x + 1


@activity
def step_two(ctx: Any, x: int) -> int:
    return x * 2


@activity
def step_three(ctx: Any, x: int) -> int:
    return x - 3


@workflow
def three_steps(ctx: Any, x: int):  # type: ignore[no-untyped-def]
    """Three trivial activities, one after the other."""
    a = yield step_one(x)
    b = yield step_two(a)
    return (yield step_three(b))


@workflow
def wait_once(ctx: Any):  # type: ignore[no-untyped-def]
    """Park on one event and return its data."""
    event = yield WaitEvent("bench.go")
    return event.data


def raw_sqlite(path: str, n: int = 500, synchronous: str = "FULL") -> float:
    """Single-row commits/s on a SQLite file (WAL, ``synchronous`` (FULL), BEGIN IMMEDIATE)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    start = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (v) VALUES (?)", (str(i),))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


def raw_postgres(url: str, n: int = 500) -> float:
    """Single-row commits/s on one PostgreSQL connection."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS raw_t (id serial PRIMARY KEY, v text)")
        conn.commit()
        start = time.perf_counter()
        for i in range(n):
            conn.execute("INSERT INTO raw_t (v) VALUES (%s)", (str(i),))
            conn.commit()
        return n / (time.perf_counter() - start)

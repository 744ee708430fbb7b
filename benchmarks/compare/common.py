"""Helpers shared by the runners. Standard library only: every runner imports this file from its
own virtual environment (replaykit's .venv, or a peer's benchmarks/.peers/<name>/).

A runner is started by the driver as ``python run_<lib>.py PHASE --db-url URL --sizes JSON`` and
prints its figures as one line ``RESULT {json}`` on stdout. Phases:

* ``main``    workloads 1-4: sequential, burst, start-to-result latency, event wake-up latency
* ``park``    workload 6: RSS added by N instances parked on an event/message wait
* ``commits`` workload 5: start the library, run N sequential workflows, stop it. The driver
              runs it with N and with 0 and divides the difference by N. On SQLite the runner
              counts commits itself (trace callback on every stdlib sqlite3 connection); on
              PostgreSQL the driver reads pg_stat_database.xact_commit before and after.
"""

from __future__ import annotations

import argparse
import gc
import json
import sqlite3
import sqlite3.dbapi2
import threading
import time
from collections.abc import Callable
from typing import Any

RESULT_PREFIX = "RESULT "
READY_GRACE_S = 0.02  # pause between "instance is parked" and sending its event, for all libraries
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("phase", choices=["main", "park", "commits", "profile"])
    parser.add_argument("--db-url", required=True, help="sqlite:///path or postgresql://...")
    parser.add_argument("--sizes", default="{}", help="JSON: n_seq, n_burst, n_latency, ...")
    parser.add_argument("--n", type=int, default=0, help="workflows in the commits phase")
    return parser.parse_args()


def emit(result: dict[str, Any]) -> None:
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def settled_rss_mb() -> float:
    gc.collect()
    time.sleep(0.5)
    gc.collect()
    return rss_mb()


class Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def ms(self) -> float:
        return (time.perf_counter() - self.start) * 1000

    def s(self) -> float:
        return time.perf_counter() - self.start


def latency_summary(
    prefix: str, values: list[float], quantiles: dict[str, float]
) -> dict[str, float]:
    out = {f"{prefix}_{name}": pct(values, q) for name, q in quantiles.items()}
    out[f"{prefix}_max"] = max(values)
    return out


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, step: float = 0.001) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(step)


class SqliteCommitCounter:
    """Counts commits on every stdlib ``sqlite3`` connection opened after ``install()``.

    ``sqlite3.connect`` is wrapped so that each new connection gets a trace callback
    (``Connection.set_trace_callback``, which sees every statement SQLite runs, including the
    ``COMMIT`` issued by ``Connection.commit()``). Per connection it counts ``COMMIT``/``END``
    and, outside an explicit ``BEGIN``, each write statement (an autocommit write is one commit);
    ``write_commits`` only counts transactions that ran an INSERT/UPDATE/DELETE/REPLACE.
    Works for any library that reaches SQLite through the stdlib module: directly (replaykit),
    via SQLAlchemy's pysqlite dialect (DBOS) or via aiosqlite (Edda).
    """

    def __init__(self) -> None:
        self.commits = 0
        self.write_commits = 0
        self.statements = 0
        self.pragmas: set[str] = set()
        #: whether connections opened from now on are traced (off: they run as untraced ones,
        #: e.g. while CPU time is measured, which a Python callback per statement would inflate)
        self.tracing = True
        self._lock = threading.Lock()
        self._original: Any = None

    def install(self) -> None:
        self._original = sqlite3.connect
        counter = self

        def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            conn = counter._original(*args, **kwargs)
            if counter.tracing:
                conn.set_trace_callback(counter._make_callback())
            return conn

        # SQLAlchemy's pysqlite dialect calls sqlite3.dbapi2.connect, aiosqlite sqlite3.connect
        sqlite3.connect = connect  # type: ignore[assignment]
        sqlite3.dbapi2.connect = connect  # type: ignore[assignment]

    def _make_callback(self) -> Callable[[str], None]:
        state = {"in_tx": False, "wrote": False}

        def trace(sql: str) -> None:
            head = sql.lstrip().upper()
            if head.startswith("--"):  # statements run by triggers
                return
            with self._lock:
                self.statements += 1
                if head.startswith("BEGIN"):
                    state.update(in_tx=True, wrote=False)
                elif head.startswith(("COMMIT", "END")):
                    self.commits += 1
                    self.write_commits += state["wrote"]
                    state.update(in_tx=False, wrote=False)
                elif head.startswith("ROLLBACK") and not head.startswith("ROLLBACK TO"):
                    state.update(in_tx=False, wrote=False)
                elif head.startswith("PRAGMA") and "=" in head:
                    self.pragmas.add(" ".join(head.split()))
                elif head.startswith(_WRITES):
                    if state["in_tx"]:
                        state["wrote"] = True
                    else:  # autocommit write: its own transaction
                        self.commits += 1
                        self.write_commits += 1

        return trace


class PsycopgStatementCounter:
    """Counts client round trips on psycopg 3 connections.

    Every statement goes through ``Cursor.execute``/``executemany`` and every BEGIN, COMMIT,
    ROLLBACK or SAVEPOINT psycopg sends itself (``conn.transaction()``, ``conn.commit()``, the
    implicit BEGIN of a non-autocommit connection) through ``BaseConnection._exec_command``;
    one call is one round trip (none of the libraries uses pipeline mode). replaykit's
    PostgreSQL fast path sends its statements with libpq directly
    (``storage_adapters.postgres.prepared``: ``_exec``, and ``_prepare`` once per connection),
    counted too where the tree has it.
    """

    def __init__(self) -> None:
        self.round_trips = 0
        self._lock = threading.Lock()

    def install(self) -> bool:
        try:
            import psycopg
            from psycopg._connection_base import BaseConnection
        except ImportError:
            return False
        counter = self
        targets: list[tuple[Any, tuple[str, ...]]] = [
            (psycopg.Cursor, ("execute", "executemany")),
            (BaseConnection, ("_exec_command",)),
        ]
        try:
            from storage_adapters.postgres import prepared
        except ImportError:
            pass  # another library's tree, or a replaykit before the prepared fast path
        else:
            targets.append((prepared, ("_exec", "_prepare")))
        for cls, names in targets:
            for name in names:
                original = getattr(cls, name)

                def wrapped(self: Any, *a: Any, __orig: Any = original, **k: Any) -> Any:
                    with counter._lock:
                        counter.round_trips += 1
                    return __orig(self, *a, **k)

                setattr(cls, name, wrapped)
        return True


def commits_phase_result(counter: SqliteCommitCounter | None, n: int, **extra: Any) -> None:
    out: dict[str, Any] = {"n": n, **extra}
    if counter is not None:
        out.update(
            sqlite_commits=counter.commits,
            sqlite_write_commits=counter.write_commits,
            sqlite_statements=counter.statements,
            sqlite_pragmas=sorted(counter.pragmas),
        )
    emit(out)

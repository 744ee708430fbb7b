"""CPU per workflow: where a 3-activity workflow's cost goes, in the process that runs it.

Prints, for SQLite with ``synchronous=OFF`` (no disk waits: CPU isolated), SQLite with the
default ``synchronous=FULL`` and PostgreSQL, over N sequential 3-activity workflows run by one
``App`` in this process:

* user and system CPU per workflow (``resource.getrusage(RUSAGE_SELF)``, every thread counted),
  with no statement counting in that run (a Python callback per statement would inflate it)
* statements per workflow (SQLite: every statement the library runs, from a trace callback) or
  client round trips per workflow (PostgreSQL: every execute and transaction command), counted
  in a second, shorter run; commits per workflow: the library's own count of write
  transactions (``storage.commits``)
* context switches per step (voluntary + involuntary, whole process; a 3-activity workflow has
  4 steps: three activities and its finish): a thread hand-off costs at least one
* the share of the commit floor reached: the database's raw single-row commits/s (probed right
  before and right after the run, mean of the two) divided by the library's commits per workflow
  is the fastest a workflow can go; ``share`` is achieved workflows/s over that
* a burst: N workflows started at once, workflows/s

Never asserts on timing. ``REPLAYKIT_SRC=/path/to/other/checkout`` runs another tree's code (for
an A/B in one session: run it twice, alternating, and compare the ratios).

    .venv/bin/python benchmarks/bench_cpu.py [--n 500] [--burst 500]
        [--only sqlite-off,sqlite-full,postgres]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import uuid
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("REPLAYKIT_SRC") or os.path.dirname(HERE))
sys.path.insert(1, os.path.join(HERE, "compare"))
sys.path.append(HERE)

import common  # noqa: E402

SQLITE = common.SqliteCommitCounter()
SQLITE.install()  # before replaykit opens any connection
PG = common.PsycopgStatementCounter()
PG_COUNTING: list[bool] = []  # installed (only after PostgreSQL's CPU was measured)

from workloads import raw_postgres, raw_sqlite, three_steps  # noqa: E402

from replaykit.core.definitions import Registry  # noqa: E402
from replaykit.runtime.app import App  # noqa: E402

STEPS_PER_WORKFLOW = 4
PG_DSN = os.environ.get("REPLAYKIT_TEST_PG_DSN") or "postgresql://postgres@127.0.0.1:5432/test"


def _usage() -> tuple[float, float, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime, r.ru_nvcsw + r.ru_nivcsw


def statements_per_workflow(name: str, url: str, options: dict[str, Any], n: int) -> float:
    """Statements (SQLite, from a trace callback) or round trips (PostgreSQL) per workflow, in a
    run of its own: the callback would inflate the CPU time measured in the other run."""
    SQLITE.tracing = True
    if name == "postgres" and not PG_COUNTING:
        PG_COUNTING.append(PG.install())  # from now on: psycopg's calls are wrapped to count
    app = App(url, registry=Registry(), workflows=[three_steps], storage_options=options)
    with app:
        for i in range(20):
            app.start_workflow(three_steps, i).result(timeout=60)
        before = SQLITE.statements if name != "postgres" else PG.round_trips
        for i in range(n):
            app.start_workflow(three_steps, i).result(timeout=60)
        after = SQLITE.statements if name != "postgres" else PG.round_trips
    SQLITE.tracing = False
    return (after - before) / n


def measure(name: str, url: str, options: dict[str, Any], n: int, burst: int) -> dict[str, float]:
    SQLITE.tracing = False  # this App's connections run untraced
    app = App(url, registry=Registry(), workflows=[three_steps], storage_options=options)
    with app:
        for i in range(20):  # warm-up: connections, prepared statements, code paths
            app.start_workflow(three_steps, i).result(timeout=60)
        storage: Any = app.storage
        if name == "postgres":
            probe_url = url
            floor_before = raw_postgres(probe_url, 300)
        else:
            probe = os.path.join(tempfile.mkdtemp(), "raw.db")
            floor_before = raw_sqlite(probe, 300, options["synchronous"])
        commits0 = storage.commits  # the library's own count of write transactions
        u0, s0, cs0 = _usage()
        t0 = time.perf_counter()
        for i in range(n):
            app.start_workflow(three_steps, i).result(timeout=60)
        wall = time.perf_counter() - t0
        u1, s1, cs1 = _usage()
        commits = storage.commits - commits0
        if name == "postgres":
            floor_after = raw_postgres(probe_url, 300)
        else:
            floor_after = raw_sqlite(probe, 300, options["synchronous"])
        t0 = time.perf_counter()
        handles = [app.start_workflow(three_steps, i) for i in range(burst)]
        for h in handles:
            h.result(timeout=600)
        burst_rate = burst / (time.perf_counter() - t0)
    statements = statements_per_workflow(name, url, options, min(n, 100))
    floor = (floor_before + floor_after) / 2
    commits_per_wf = commits / n
    wf_per_s = n / wall
    return {
        "wf_per_s": wf_per_s,
        "wall_ms": 1000 * wall / n,
        "user_ms": 1000 * (u1 - u0) / n,
        "sys_ms": 1000 * (s1 - s0) / n,
        "cpu_ms": 1000 * (u1 - u0 + s1 - s0) / n,
        "statements": statements,
        "commits": commits_per_wf,
        "switches_per_step": (cs1 - cs0) / (n * STEPS_PER_WORKFLOW),
        "raw_commits_per_s": floor,
        "share": wf_per_s * commits_per_wf / floor if floor else 0.0,
        "burst_wf_per_s": burst_rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--only", default="sqlite-off,sqlite-full,postgres")
    args = parser.parse_args()
    rows = []
    for name in args.only.split(","):
        if name == "postgres":
            schema = "bench_cpu_" + uuid.uuid4().hex[:8]
            url = f"{PG_DSN}?options=-csearch_path%3D{schema}"
            import psycopg

            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            try:
                rows.append((name, measure(name, url, {}, args.n, args.burst)))
            finally:
                with psycopg.connect(PG_DSN, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")
        else:
            sync = "OFF" if name == "sqlite-off" else "FULL"
            url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "bench.db")
            rows.append((name, measure(name, url, {"synchronous": sync}, args.n, args.burst)))
    keys = list(rows[0][1])
    print(f"{'':14}" + "".join(f"{k:>18}" for k in keys))
    for name, figures in rows:
        print(f"{name:14}" + "".join(f"{figures[k]:>18.3f}" for k in keys))


if __name__ == "__main__":
    main()

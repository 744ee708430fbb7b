"""CPU per workflow: where a 3-activity workflow's cost goes, in the process that runs it.

Prints, for SQLite with ``synchronous=OFF`` (no disk waits: CPU isolated), SQLite with the
default ``synchronous=FULL`` and PostgreSQL, over N sequential 3-activity workflows run by one
``App`` in this process:

* user and system CPU per workflow (``resource.getrusage(RUSAGE_SELF)``, every thread counted)
* statements per workflow (SQLite: every statement the library runs, from a trace callback) or
  client round trips per workflow (PostgreSQL: every execute and transaction command)
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

from workloads import raw_postgres, raw_sqlite, three_steps  # noqa: E402

from replaykit.core.definitions import Registry  # noqa: E402
from replaykit.runtime.app import App  # noqa: E402

STEPS_PER_WORKFLOW = 4
PG_DSN = os.environ.get("REPLAYKIT_TEST_PG_DSN") or "postgresql://postgres@127.0.0.1:5432/test"


def _usage() -> tuple[float, float, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime, r.ru_nvcsw + r.ru_nivcsw


def _pg_commits(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        assert row is not None
        return int(row[0])


def measure(name: str, url: str, options: dict[str, Any], n: int, burst: int) -> dict[str, float]:
    app = App(url, registry=Registry(), workflows=[three_steps], storage_options=options)
    with app:
        for i in range(20):  # warm-up: connections, prepared statements, code paths
            app.start_workflow(three_steps, i).result(timeout=60)
        if name == "postgres":
            probe_url = url
            floor_before = raw_postgres(probe_url, 300)
            commits0 = _pg_commits(url)
        else:
            probe = os.path.join(tempfile.mkdtemp(), "raw.db")
            floor_before = raw_sqlite(probe, 300, options["synchronous"])
            commits0 = SQLITE.commits
        statements0 = SQLITE.statements if name != "postgres" else PG.round_trips
        u0, s0, cs0 = _usage()
        t0 = time.perf_counter()
        for i in range(n):
            app.start_workflow(three_steps, i).result(timeout=60)
        wall = time.perf_counter() - t0
        u1, s1, cs1 = _usage()
        statements = (SQLITE.statements if name != "postgres" else PG.round_trips) - statements0
        if name == "postgres":
            commits = _pg_commits(url) - commits0 - 1  # the probe's own read
            floor_after = raw_postgres(probe_url, 300)
        else:
            commits = SQLITE.commits - commits0
            floor_after = raw_sqlite(probe, 300, options["synchronous"])
        t0 = time.perf_counter()
        handles = [app.start_workflow(three_steps, i) for i in range(burst)]
        for h in handles:
            h.result(timeout=600)
        burst_rate = burst / (time.perf_counter() - t0)
    floor = (floor_before + floor_after) / 2
    commits_per_wf = commits / n
    wf_per_s = n / wall
    return {
        "wf_per_s": wf_per_s,
        "wall_ms": 1000 * wall / n,
        "user_ms": 1000 * (u1 - u0) / n,
        "sys_ms": 1000 * (s1 - s0) / n,
        "cpu_ms": 1000 * (u1 - u0 + s1 - s0) / n,
        "statements": statements / n,
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
    PG.install()
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

"""Where one sequential 3-activity workflow spends its time on PostgreSQL.

    .venv/bin/python benchmarks/pg_timeline.py [--n 500] [--dsn postgresql://...]

Wraps ``psycopg.Connection.execute`` with a timer, runs 300 warm-up workflows and then N (500)
one at a time, and prints p50/mean of: each of the four statements (creation, three steps), the
gaps between them (thread hand-off, Python), the hand-back of the result, and the time of a raw
single-row INSERT in autocommit on the same server for comparison. DSN: --dsn, else
$REPLAYKIT_TEST_PG_DSN, else the local test server. Uses its own schema,
``rk_timeline``, dropped and recreated at each run. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from typing import Any

import psycopg

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from workloads import three_steps

from replaykit.core.definitions import Registry
from replaykit.runtime.app import App

SCHEMA = "rk_timeline"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--dsn", default=os.environ.get("REPLAYKIT_TEST_PG_DSN"))
    args = parser.parse_args()
    dsn = args.dsn or "postgresql://postgres@127.0.0.1:5432/test"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        admin.execute(f"CREATE SCHEMA {SCHEMA}")
    url = f"{dsn}{'&' if '?' in dsn else '?'}options=-csearch_path%3D{SCHEMA}"

    marks: list[tuple[float, float]] = []
    original = psycopg.Connection.execute

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        cursor = original(self, *args, **kwargs)
        marks.append((started, time.perf_counter()))
        return cursor

    psycopg.Connection.execute = timed  # type: ignore[method-assign]
    gaps: dict[str, list[float]] = defaultdict(list)
    with App(url, registry=Registry(), workflows=[three_steps]) as app:
        for i in range(300):
            app.start_workflow(three_steps, i).result(timeout=60)
        for i in range(args.n):
            marks.clear()
            t0 = time.perf_counter()
            handle = app.start_workflow(three_steps, i)
            handle.result(timeout=60)
            t1 = time.perf_counter()
            if len(marks) != 4:  # a background query (heartbeat, timers) landed in between
                continue
            names = ("create", "step 1", "step 2", "step 3 + completion")
            for name, (begin, end) in zip(names, marks, strict=True):
                gaps[f"statement: {name}"].append(end - begin)
            for k in range(3):
                gaps[f"gap: statement {k} -> {k + 1}"].append(marks[k + 1][0] - marks[k][1])
            gaps["gap: last statement -> result()"].append(t1 - marks[3][1])
            gaps["whole workflow"].append(t1 - t0)
    psycopg.Connection.execute = original  # type: ignore[method-assign]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE raw_probe (id serial PRIMARY KEY, v int)")
        for i in range(args.n * 2):
            started = time.perf_counter()
            conn.execute("INSERT INTO raw_probe (v) VALUES (%s)", (i,))
            gaps["raw single-row INSERT (autocommit)"].append(time.perf_counter() - started)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    print(f"{'':40s} {'p50 ms':>8s} {'mean ms':>8s}   (n = {len(gaps['whole workflow'])})")
    for name, values in gaps.items():
        p50, mean = statistics.median(values) * 1000, statistics.mean(values) * 1000
        print(f"{name:40s} {p50:8.3f} {mean:8.3f}")


if __name__ == "__main__":
    main()

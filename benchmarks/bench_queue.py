"""Queue benchmark on SQLite and PostgreSQL: prints figures, never asserts.

    .venv/bin/python benchmarks/bench_queue.py                   # SQLite, and PostgreSQL at
                                                                 # $REPLAYKIT_TEST_PG_DSN if set
    .venv/bin/python benchmarks/bench_queue.py --quick --json out.json

Per database, in one process with one worker (``App(concurrency=64)``), N one-activity workflows:

* ``direct``: started with ``start_workflow`` (no queue), all at once, then every result awaited;
* ``queued``: the same through ``enqueue`` on a queue with ``concurrency=50``: stored ``queued``,
  made ``pending`` by the admission step (queue row locked, running instances counted), claimed.

Printed: instances/s of each, the overhead ratio (direct / queued: how many times slower the
queue is), the enqueue calls/s alone, and the peak number of the queue's running instances seen
by sampling ``queue_stats()`` (at most 50 if the limit holds). PostgreSQL runs in a fresh schema,
dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from replaykit import activity, workflow
from replaykit.core.definitions import Registry
from replaykit.runtime.app import App

QUEUE_CONCURRENCY = 50


@activity
def bump(ctx: Any, x: int) -> int:
    return x + 1


@workflow
def one_step(ctx: Any, x: int):  # type: ignore[no-untyped-def]
    """One trivial activity: the shortest workflow, where the queue's cost shows most."""
    return (yield bump(x))


def _app(url: str) -> App:
    app = App(url, registry=Registry(), workflows=[one_step], concurrency=64, poll_interval=0.2)
    app.queue("bench", concurrency=QUEUE_CONCURRENCY)
    return app


def _direct(app: App, n: int) -> float:
    start = time.perf_counter()
    handles = [app.start_workflow(one_step, i) for i in range(n)]
    for handle in handles:
        handle.result(timeout=600)
    return n / (time.perf_counter() - start)


def _queued(app: App, n: int) -> tuple[float, float, int]:
    """(instances/s end to end, enqueue calls/s, peak running seen)."""
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            for stats in app.queue_stats():
                peak = max(peak, stats.running)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    handles = [app.enqueue("bench", one_step, i) for i in range(n)]
    enqueued = time.perf_counter() - start
    for handle in handles:
        handle.result(timeout=600)
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    return n / elapsed, n / enqueued, peak


def bench(url: str, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {"database": url.split(":", 1)[0]}
    with _app(url) as app:
        app.start_workflow(one_step, 0).result(timeout=60)  # warm-up
        app.enqueue("bench", one_step, 0).result(timeout=60)
        out["direct_per_s"] = _direct(app, n)
        out["queued_per_s"], out["enqueue_calls_per_s"], out["peak_running"] = _queued(app, n)
    out["overhead_direct_over_queued"] = out["direct_per_s"] / out["queued_per_s"]
    return out


@contextmanager
def _pg_schema(dsn: str) -> Iterator[str]:
    import psycopg

    schema = f"rk_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        sep = "&" if "?" in dsn else "?"
        yield f"{dsn}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--quick", action="store_true", help="200 instances instead of 2000")
    args = parser.parse_args()
    n = 200 if args.quick else 2000
    folder = tempfile.mkdtemp(prefix="rk-bench-queue-")
    results = [bench(f"sqlite:///{os.path.join(folder, 'bench.db')}", n)]
    dsn = os.environ.get("REPLAYKIT_TEST_PG_DSN")
    if dsn:
        with _pg_schema(dsn) as url:
            results.append(bench(url, n))
    print(f"{n} one-activity workflows, queue concurrency {QUEUE_CONCURRENCY}, 1 worker process")
    print(f"{'metric':<30}" + "".join(f"{r['database']:>14}" for r in results))
    for key in [k for k in results[0] if k != "database"]:
        cells = "".join(
            f"{r[key]:>14.2f}" if isinstance(r[key], float) else f"{r[key]!s:>14}" for r in results
        )
        print(f"{key:<30}{cells}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

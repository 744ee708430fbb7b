"""Runtime benchmark on SQLite, PostgreSQL and MySQL/MariaDB: prints figures, never asserts.

    .venv/bin/python benchmarks/bench_runtime.py                 # SQLite only
    REPLAYKIT_TEST_PG_DSN=postgresql://postgres@127.0.0.1:5432/test \\
    REPLAYKIT_TEST_MYSQL_DSN=mysql://root@127.0.0.1:3306/test \\
        .venv/bin/python benchmarks/bench_runtime.py --json out.json

Measures, per database: 3-activity workflows run one at a time and 500 started at once
(workflows/s), start-to-result latency (p50, p90), event wake-up latency (event sent -> workflow
completes; p50, max), database commits per workflow, and the RSS added by 10,000 instances parked
on an event wait. Also prints the database's own limit measured in the same run: raw single-row
commits per second on the same SQLite file (WAL), PostgreSQL connection and MySQL connection
(PyMySQL; InnoDB with the server's own ``innodb_flush_log_at_trx_commit``). PostgreSQL runs in a
fresh schema and MySQL in a fresh database, both dropped afterwards. MySQL has no LISTEN/NOTIFY:
its workers poll every ``poll_interval`` (0.2 s here), which shows in the wake-up latencies.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
import time
import uuid
from typing import Any

from replaykit.core.definitions import Registry
from replaykit.runtime.app import App

try:  # run as a script (benchmarks/ on sys.path) or as the package module
    from workloads import raw_postgres, raw_sqlite, three_steps, wait_once
except ImportError:  # pragma: no cover
    from benchmarks.workloads import raw_postgres, raw_sqlite, three_steps, wait_once


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def commits(app: App) -> int | None:
    value = getattr(app.storage, "commits", None)
    return int(value) if value is not None else None


def raw_commits_per_second(url: str, n: int = 500) -> float:
    if url.startswith("sqlite"):
        return raw_sqlite(url.removeprefix("sqlite:///") + ".raw", n)
    if url.startswith("mysql"):
        return raw_mysql_commits_per_second(url, n)
    return raw_postgres(url, n)


def raw_mysql_commits_per_second(url: str, n: int) -> float:
    from storage_adapters.mysql.adapter import connect_args, open_connection

    conn = open_connection(connect_args(url))
    try:
        cursor = conn.cursor()
        cursor.execute("CREATE TABLE t (id BIGINT AUTO_INCREMENT PRIMARY KEY, v TEXT)")
        start = time.perf_counter()
        for i in range(n):
            cursor.execute("INSERT INTO t (v) VALUES (%s)", (str(i),))
            conn.commit()
        return n / (time.perf_counter() - start)
    finally:
        conn.close()


def bench(
    url: str, *, n_seq: int, n_burst: int, n_latency: int, n_wake: int, n_parked: int
) -> dict[str, Any]:
    registry = Registry()
    out: dict[str, Any] = {"database": url.split(":", 1)[0].replace("mariadb", "mysql")}
    with App(url, registry=registry, workflows=[three_steps, wait_once], poll_interval=0.2) as app:
        app.start_workflow(three_steps, 1).result(timeout=30)  # warm-up

        c0 = commits(app)
        start = time.perf_counter()
        for i in range(n_seq):
            app.start_workflow(three_steps, i).result(timeout=60)
        elapsed = time.perf_counter() - start
        out["sequential_wf_per_s"] = n_seq / elapsed
        c1 = commits(app)
        if c0 is not None and c1 is not None:
            out["commits_per_workflow"] = (c1 - c0) / n_seq

        start = time.perf_counter()
        handles = [app.start_workflow(three_steps, i) for i in range(n_burst)]
        for h in handles:
            h.result(timeout=300)
        out["burst_wf_per_s"] = n_burst / (time.perf_counter() - start)

        lat = []
        for i in range(n_latency):
            t = time.perf_counter()
            app.start_workflow(three_steps, i).result(timeout=60)
            lat.append((time.perf_counter() - t) * 1000)
        out["start_to_result_ms_p50"] = pct(lat, 0.5)
        out["start_to_result_ms_p90"] = pct(lat, 0.9)

        wake = []
        for _ in range(n_wake):
            h = app.start_workflow(wait_once)
            while app.status(h.instance_id).status != "waiting":
                time.sleep(0.001)
            time.sleep(0.02)  # parked for a moment, as in compare/ (the same pause for all)
            t = time.perf_counter()
            app.send_event("bench.go", {"ok": True}, instance_id=h.instance_id)
            h.result(timeout=60)
            wake.append((time.perf_counter() - t) * 1000)
        out["event_wakeup_ms_p50"] = pct(wake, 0.5)
        out["event_wakeup_ms_max"] = max(wake)

    gc.collect()
    with App(
        url, registry=registry, workflows=[wait_once], poll_interval=0.2, concurrency=8
    ) as app:
        before = rss_mb()
        ids = [app.start_workflow(wait_once).instance_id for _ in range(n_parked)]
        deadline = time.time() + 300
        while app.worker and app.worker.active_count() and time.time() < deadline:
            time.sleep(0.05)
        gc.collect()
        out["rss_added_mb_parked"] = rss_mb() - before
        out["parked"] = len(ids)
    out["raw_commits_per_s"] = raw_commits_per_second(url)
    out["sequential_vs_raw_commit_limit"] = (
        out["sequential_wf_per_s"] * out.get("commits_per_workflow", 4) / out["raw_commits_per_s"]
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--quick", action="store_true", help="smaller counts (smoke run)")
    args = parser.parse_args()
    sizes = dict(n_seq=500, n_burst=500, n_latency=50, n_wake=20, n_parked=10_000)
    if args.quick:
        sizes = dict(n_seq=50, n_burst=50, n_latency=10, n_wake=5, n_parked=500)
    results = []
    folder = tempfile.mkdtemp(prefix="rk-bench-")
    results.append(bench(f"sqlite:///{os.path.join(folder, 'bench.db')}", **sizes))
    dsn = os.environ.get("REPLAYKIT_TEST_PG_DSN")
    if dsn:
        import psycopg

        schema = f"rk_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        try:
            sep = "&" if "?" in dsn else "?"
            results.append(bench(f"{dsn}{sep}options=-csearch_path%3D{schema}", **sizes))
        finally:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
    mysql_dsn = os.environ.get("REPLAYKIT_TEST_MYSQL_DSN")
    if mysql_dsn:
        from storage_adapters.mysql.adapter import scratch_database

        with scratch_database(mysql_dsn, "rk_bench") as url:
            results.append(bench(url, **sizes))
    keys = [k for k in results[0] if k != "database"]
    print(f"{'metric':<34}" + "".join(f"{r['database']:>14}" for r in results))
    for key in keys:
        cells = "".join(
            f"{r[key]:>14.2f}" if isinstance(r.get(key), float) else f"{r.get(key, '-')!s:>14}"
            for r in results
        )
        print(f"{key:<34}{cells}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

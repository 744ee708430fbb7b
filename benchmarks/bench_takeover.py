"""Takeover after a worker is killed: SIGKILL -> the instance's next step, on each database.

    .venv/bin/python -m benchmarks.bench_takeover                     # SQLite, PostgreSQL, MySQL
    .venv/bin/python -m benchmarks.bench_takeover --kills 5 --only sqlite

A worker process runs an instance whose activity is in the middle of its first attempt (it
would take a minute); the process is killed with SIGKILL. Measured: from the kill to the moment
the activity starts again in another process (the instance's next step taken up). Two cases,
``--kills`` times each (default 20):

* ``survivor``: two worker processes; the one running the instance is killed, the other takes
  it over (then a new process replaces the killed one);
* ``restart``: one worker process, killed and started again at once (the time includes the new
  process starting: Python, imports, connecting).

Every worker runs with the App's DEFAULT settings (``lease_seconds=60``, ``poll_interval=1``,
``liveness_interval=0.25``): what is measured is death detection, not lease expiry. Prints p50
and max per database and case; never asserts (``tests/runtime/test_takeover.py`` does, on a few
kills). PostgreSQL runs in a fresh schema and MySQL in a fresh database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from replaykit import activity, workflow
from replaykit.core.definitions import Registry
from replaykit.runtime.app import App

ROOT = Path(__file__).resolve().parents[1]
LOG = os.environ.get("RK_TAKEOVER_LOG", "/dev/null")


def _append(line: str) -> None:
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


@activity(name="takeover_hold_on", transactional=False)
def hold_on(ctx: Any) -> str:
    """Logs its start; its first attempt takes a minute (it is killed in here)."""
    _append(f"start {ctx.instance_id} {os.getpid()} {time.time():.6f}")
    marker = Path(f"{LOG}.{ctx.instance_id}")
    if not marker.exists():
        marker.touch()
        time.sleep(60)
    return "ok"


@workflow(name="takeover_victim")
def victim(ctx: Any):  # type: ignore[no-untyped-def]
    return (yield hold_on())


def worker_main(url: str) -> None:
    """A worker process with the App's default settings; runs until killed."""
    app = App(url, registry=Registry(), workflows=[victim])
    with app:
        _append(f"ready - {os.getpid()} {time.time():.6f}")
        while True:
            time.sleep(1)


class Cluster:
    """Worker processes on one database, and the log they write."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url = url
        self.log = folder / f"takeover-{uuid.uuid4().hex[:8]}.log"
        self.log.touch()
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def spawn(self, *, wait_ready: bool = True) -> int:
        env = dict(os.environ, RK_TAKEOVER_LOG=str(self.log), PYTHONPATH=str(ROOT))
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_takeover", "--worker", self.url],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs[proc.pid] = proc
        if wait_ready:
            self.wait_for(lambda kind, _i, pid: kind == "ready" and pid == proc.pid, 60)
        return proc.pid

    def lines(self) -> list[tuple[str, str, int, float]]:
        found = []
        for line in self.log.read_text().splitlines():
            kind, instance_id, pid, at = line.split()
            found.append((kind, instance_id, int(pid), float(at)))
        return found

    def wait_for(self, match: Any, timeout: float) -> tuple[str, str, int, float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines():
                if match(*line[:3]):
                    return line
            time.sleep(0.005)
        raise TimeoutError(f"no matching line in {self.log} after {timeout} s")

    def kill(self, pid: int) -> float:
        """SIGKILL ``pid``; the time of the kill."""
        at = time.time()
        os.kill(pid, signal.SIGKILL)
        self.procs.pop(pid).wait()
        return at

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.kill()
            proc.wait()
        self.procs.clear()


def takeover_times(url: str, case: str, kills: int, *, timeout: float = 30.0) -> list[float]:
    """Seconds from each SIGKILL to the activity starting again in another process."""
    client = App(url, registry=Registry(), workflows=[victim], workers=False)
    with tempfile.TemporaryDirectory() as folder:
        cluster = Cluster(url, Path(folder))
        try:
            for _ in range(2 if case == "survivor" else 1):
                cluster.spawn()
            times = []
            for _ in range(kills):
                instance_id = client.start_workflow(victim).instance_id
                first = cluster.wait_for(
                    lambda k, i, _p, x=instance_id: k == "start" and i == x, 60
                )
                killed_at = cluster.kill(first[2])
                if case == "restart":
                    cluster.spawn(wait_ready=False)
                again = cluster.wait_for(
                    lambda k, i, p, x=instance_id, dead=first[2]: (
                        k == "start" and i == x and p != dead
                    ),
                    timeout,
                )
                times.append(again[3] - killed_at)
                if case == "survivor":
                    cluster.spawn()
                else:
                    cluster.wait_for(lambda k, _i, p, new=again[2]: k == "ready" and p == new, 60)
            return times
        finally:
            cluster.stop()
            client.stop()


@contextlib.contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A fresh database of ``kind`` (sqlite, postgres, mysql); its URL."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / f'takeover-{uuid.uuid4().hex[:8]}.db'}"
        return
    if kind == "mysql":
        from storage_adapters.mysql.adapter import scratch_database

        dsn = os.environ.get("REPLAYKIT_TEST_MYSQL_DSN") or "mysql://root@127.0.0.1:3306/test"
        with scratch_database(dsn, "rk_takeover") as url:
            yield url
        return
    import psycopg

    dsn = os.environ.get("REPLAYKIT_TEST_PG_DSN") or "postgresql://postgres@127.0.0.1:5432/test"
    schema = f"rk_takeover_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{dsn}{'&' if '?' in dsn else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--only", default="sqlite,postgres,mysql")
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker)
        return
    print(f"SIGKILL -> next step taken up, {args.kills} kills per row (seconds)")
    print(f"{'database':10} {'case':9} {'p50':>6} {'max':>6} {'min':>6}")
    with tempfile.TemporaryDirectory() as folder:
        for kind in args.only.split(","):
            for case in ("survivor", "restart"):
                with database(kind, Path(folder)) as url:
                    times = takeover_times(url, case, args.kills)
                p50, worst, best = pct(times, 0.5), max(times), min(times)
                print(f"{kind:10} {case:9} {p50:6.3f} {worst:6.3f} {best:6.3f}", flush=True)


if __name__ == "__main__":
    main()

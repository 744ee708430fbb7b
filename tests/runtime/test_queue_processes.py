"""Queue limits under four worker processes on one database (PostgreSQL, SQLite file, MySQL).

The limits are checked against what the activities record (``queue_proc``: one line per run with
its wall-clock start and end) and against the admission times the database stored.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from replaykit.runtime.app import App

from . import queue_proc

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _spawn(url: str, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, RK_QUEUE_LOG=str(log), PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.runtime.queue_proc", url],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _run(url: str, log: Path, queue: str, count: int, seconds: float) -> tuple[App, list[str]]:
    """Enqueue ``count`` jobs from a client, run four worker processes until all are done."""
    client = queue_proc.make_app(url, workers=False)
    ids = [client.enqueue(queue, queue_proc.job, seconds).instance_id for i in range(count)]
    procs = [_spawn(url, log) for _ in range(4)]
    try:
        for instance_id in ids:
            client.result(instance_id, timeout=120)
    finally:
        Path(str(log) + ".stop").touch()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return client, ids


def _records(log: Path) -> dict[str, tuple[str, float, float]]:
    """instance: (pid, start, end) of its activity run (each exactly once)."""
    found: dict[str, tuple[str, float, float]] = {}
    for line in log.read_text().splitlines():
        instance_id, pid, start, end = line.split()
        assert instance_id not in found, f"{instance_id} ran twice"
        found[instance_id] = (pid, float(start), float(end))
    return found


def _peak_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    now = peak = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        now += step
        peak = max(peak, now)
    return peak


def test_global_concurrency_three_holds_across_four_workers(
    database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    client, ids = _run(database_url, log, "three", count=30, seconds=0.2)
    try:
        records = _records(log)
        assert set(records) == set(ids)
        assert _peak_overlap([(s, e) for _, s, e in records.values()]) == 3
        assert len({pid for pid, _, _ in records.values()}) > 1, "one process did everything"
        [stats] = [s for s in client.queue_stats() if s.spec.name == "three"]
        assert (stats.queued, stats.running) == (0, 0)
    finally:
        client.stop()


def test_rate_limit_five_per_second_holds_over_ten_seconds(
    database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    limit, period = 5, 1.0
    client, ids = _run(database_url, log, "five_per_second", count=60, seconds=0.01)
    try:
        records = _records(log)
        admitted = {i: client.status(i).admitted_at for i in ids}
        starts = sorted(a for a in admitted.values() if a is not None)
        assert len(starts) == len(ids)
        assert starts[-1] - starts[0] >= 10.0  # the limit held over more than ten seconds
        # the database's admission times: any limit + 1 consecutive starts span >= one period
        for i in range(len(starts) - limit):
            assert starts[i + limit] - starts[i] >= period - 1e-6, (i, starts[i : i + limit + 1])
        # the activities' own records: each starts after its admission, at most `lag` later,
        # so any window of period - lag seconds holds at most `limit` activity starts (lag is
        # the workers' dispatch delay: tens of ms, more on a loaded machine; a lag of a whole
        # period or more leaves nothing to check there, and the stored times above still hold)
        lag = max(records[i][1] - (admitted[i] or 0.0) for i in ids)
        assert lag >= 0.0
        begun = sorted(start for _, start, _ in records.values())
        for i in range(len(begun) - limit):
            assert begun[i + limit] - begun[i] > period - lag - 1e-6, begun[i : i + limit + 1]
    finally:
        client.stop()

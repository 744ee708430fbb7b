"""Real worker processes on one database: many workers, and workers killed with SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from replaykit.core.definitions import Registry
from replaykit.runtime.app import App

from . import worker_proc

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _sql(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Run one statement on the test database with its own driver; the rows it returns."""
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return list(conn.execute(sql))
    if url.startswith("mysql"):
        from storage_adapters.mysql.adapter import execute_once

        return execute_once(url, sql)
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        cur = pg.execute(sql)
        return list(cur.fetchall()) if cur.description else []


def _create_effects_table(url: str) -> None:
    _sql(url, "CREATE TABLE IF NOT EXISTS effects (instance_id TEXT, step INTEGER, pid INTEGER)")


def _effects(url: str) -> list[tuple[str, int]]:
    return [(r[0], r[1]) for r in _sql(url, "SELECT instance_id, step FROM effects")]


def _spawn(url: str, log: Path, lease: float) -> subprocess.Popen[bytes]:
    env = dict(os.environ, RK_PROC_LOG=str(log), RK_PROC_LEASE=str(lease), PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.runtime.worker_proc", url],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _client(url: str) -> App:
    return App(url, registry=Registry(), workflows=worker_proc.WORKFLOWS, workers=False)


def _stuck_report(client: App, pending: set[str]) -> str:
    """What an unfinished instance looks like: record, history tail, inbox."""
    instance_id = sorted(pending)[0]
    record = client.status(instance_id)
    history, inbox = client.storage.load_run(instance_id)
    return (
        f"{len(pending)} instances unfinished, e.g. {record}; "
        f"history tail {[h[:80] for h in history[-3:]]}; inbox {[i.event[:80] for i in inbox]}; "
        f"stats {client.storage.stats()}"
    )


def _wait_all(client: App, ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = set(ids)
    while pending:
        assert time.monotonic() < deadline, _stuck_report(client, pending)
        done = {
            r.instance_id
            for r in client.list_instances(status="completed", limit=100_000)
            if r.instance_id in pending
        }
        pending -= done
        time.sleep(0.2)


def _wait_delivered(log: Path, keys: set[str], timeout: float) -> None:
    """The relays deliver after the workflows commit: wait until every key arrived."""
    path = Path(str(log) + ".outbox")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and keys <= set(path.read_text().split()):
            return
        time.sleep(0.1)


def _intervals(log: Path) -> dict[tuple[str, int], list[tuple[str, float, str]]]:
    found: dict[tuple[str, int], list[tuple[str, float, str]]] = defaultdict(list)
    for line in log.read_text().splitlines():
        kind, instance_id, step, pid, at = line.split()
        found[(instance_id, int(step))].append((kind, float(at), pid))
    return found


def _stop(procs: list[subprocess.Popen[bytes]], log: Path) -> None:
    Path(str(log) + ".stop").touch()
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_four_workers_run_a_thousand_workflows_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    _create_effects_table(database_url)
    log = tmp_path / "log"
    client = _client(database_url)
    try:
        procs = [_spawn(database_url, log, lease=30) for _ in range(4)]
        ids = [client.start_workflow(worker_proc.three_effects, i).instance_id for i in range(1000)]
        _wait_all(client, ids, timeout=240)
        _wait_delivered(log, {f"{i}:{s}" for i in ids for s in (1, 2, 3)}, timeout=120)
        _stop(procs, log)
    finally:
        client.stop()
    effects = _effects(database_url)
    assert len(effects) == 3000 and len(set(effects)) == 3000
    runs = _intervals(log)
    assert len(runs) == 3000
    # every activity body ran once: one start and one end, in one process
    assert all([k for k, _, _ in entries] == ["start", "end"] for entries in runs.values())
    pids = {pid for entries in runs.values() for _, _, pid in entries}
    assert len(pids) > 1, "the work was not shared between worker processes"
    delivered = Path(str(log) + ".outbox").read_text().split()
    assert set(delivered) == {f"{i}:{s}" for i, s in effects}


def test_workers_killed_at_random_lose_nothing(database_url: str, tmp_path: Path) -> None:
    _create_effects_table(database_url)
    log = tmp_path / "log"
    client = _client(database_url)
    rng = random.Random(7)
    procs: list[subprocess.Popen[bytes]] = []
    kills = 0
    try:
        procs = [_spawn(database_url, log, lease=1.0) for _ in range(3)]
        ids = [client.start_workflow(worker_proc.mixed, i).instance_id for i in range(150)]
        for instance_id in ids:
            client.send_event("go", {"for": instance_id}, instance_id=instance_id)
        deadline = time.monotonic() + 600
        while kills < 20 and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.1, 0.4))
            victim = rng.randrange(len(procs))
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait()
            kills += 1
            procs[victim] = _spawn(database_url, log, lease=1.0)
        _wait_all(client, ids, timeout=240)
        _wait_delivered(log, {f"{i}:{s}" for i in ids for s in (1, 4)}, timeout=120)
        _stop(procs, log)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        client.stop()
    assert kills >= 20
    effects = _effects(database_url)
    expected = {(i, s) for i in ids for s in (1, 4)}
    # transactional effects are exactly once, even though bodies may have re-run after a kill
    assert sorted(effects) == sorted(expected)
    delivered = set(Path(str(log) + ".outbox").read_text().split())
    assert delivered >= {f"{i}:{s}" for i, s in expected}
    assert all(_result(client, i) == n for n, i in enumerate(ids))


def _result(client: App, instance_id: str) -> Any:
    return client.result(instance_id, timeout=5)

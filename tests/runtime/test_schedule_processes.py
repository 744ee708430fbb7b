"""A schedule fired by four worker processes on one database, with workers killed (SIGKILL)
and restarted, and a stretch with no worker at all: every tick starts exactly one instance,
whose work is done exactly once (catch_up="all" runs the ticks missed while all were down)."""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from replaykit.core.definitions import Registry
from replaykit.core.schedules import tick_of
from replaykit.runtime.app import App

from . import schedule_proc
from .test_processes import _sql

ROOT = Path(__file__).resolve().parents[2]
INTERVAL = 0.5
pytestmark = pytest.mark.slow


def _spawn(url: str, stop: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, RK_PROC_STOP=str(stop), RK_PROC_LEASE="2", PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.runtime.schedule_proc", url],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _wait_completed(client: App, schedule_id: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        rows = client.list_instances(workflow="stamp", limit=100_000)
        mine = [r for r in rows if r.instance_id.startswith(f"{schedule_id}@")]
        if len(mine) >= count and all(r.status == "completed" for r in mine):
            return
        assert time.monotonic() < deadline, f"{client.stats()}; {len(mine)} of {count}"
        time.sleep(0.2)


def test_four_workers_killed_and_restarted_fire_each_tick_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    _sql(database_url, "CREATE TABLE IF NOT EXISTS tick_effects (instance_id TEXT, pid INTEGER)")
    stop = tmp_path / "stop"
    schedule_id = f"s{uuid.uuid4().hex[:8]}"
    client = App(database_url, registry=Registry(), workflows=[schedule_proc.stamp], workers=False)
    rng = random.Random(14)
    procs: list[subprocess.Popen[bytes]] = []
    kills = 0
    try:
        client.schedule(
            schedule_proc.stamp, "t", every=INTERVAL, catch_up="all", schedule_id=schedule_id
        )
        procs = [_spawn(database_url, stop) for _ in range(4)]
        began = time.monotonic()
        while time.monotonic() - began < 20:  # 40 ticks
            time.sleep(rng.uniform(0.5, 1.5))
            victim = rng.randrange(len(procs))
            _kill(procs[victim])
            kills += 1
            procs[victim] = _spawn(database_url, stop)
            if kills == 6:  # no worker at all for 2 s: those ticks are caught up
                for proc in procs:
                    _kill(proc)
                time.sleep(2.0)
                procs = [_spawn(database_url, stop) for _ in range(4)]
        client.pause_schedule(schedule_id)
        last = client.get_schedule(schedule_id).last_tick
        assert last is not None
        first = client.list_instances(workflow="stamp", limit=100_000)[-1]
        expected = round((last - (tick_of(first.instance_id) or last)) / INTERVAL) + 1
        _wait_completed(client, schedule_id, expected, timeout=120)
        stop.touch()
        for proc in procs:
            proc.wait(timeout=30)
        instances = [
            r.instance_id
            for r in client.list_instances(workflow="stamp", limit=100_000)
            if r.instance_id.startswith(f"{schedule_id}@")
        ]
    finally:
        stop.touch()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        client.stop()
    ticks = sorted(tick_of(i) or 0.0 for i in instances)
    assert kills >= 6 and len(ticks) >= 30
    assert len(set(ticks)) == len(ticks)
    assert all(b - a == pytest.approx(INTERVAL) for a, b in itertools.pairwise(ticks))
    assert ticks[-1] == last
    effects = [r[0] for r in _sql(database_url, "SELECT instance_id FROM tick_effects")]
    mine = sorted(e for e in effects if e.startswith(f"{schedule_id}@"))
    assert mine == sorted(instances)  # each tick's work done exactly once
    pids = {r[0] for r in _sql(database_url, "SELECT DISTINCT pid FROM tick_effects")}
    assert len(pids) > 1

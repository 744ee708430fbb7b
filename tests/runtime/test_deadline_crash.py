"""A deadline survives a crash: the worker process is killed in the middle of a long activity,
the deadline passes while no process runs, and a restarted worker ends the instance with
``WorkflowTimedOut`` after running its compensations (and not the long activity again)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from replaykit import WorkflowTimedOut
from replaykit.core.definitions import Registry
from replaykit.runtime.app import App

from . import deadline_proc

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _spawn(url: str, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, RK_PROC_LOG=str(log), RK_PROC_LEASE="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.runtime.deadline_proc", url],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _lines(log: Path) -> list[str]:
    return [line.rsplit(" ", 1)[0] for line in log.read_text().splitlines()] if log.exists() else []


def _wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_worker_killed_before_the_deadline_times_out_the_instance_after_restart(
    database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    client = App(
        database_url, registry=Registry(), workflows=deadline_proc.WORKFLOWS, workers=False
    )
    worker = _spawn(database_url, log)
    try:
        client.start_workflow(deadline_proc.booking, "r1", instance_id="dl", timeout=3.0)
        _wait_for(lambda: "long" in _lines(log), 60, "the long activity never started")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        record = client.status("dl")
        assert record.status == "running" and record.deadline is not None, (record, _lines(log))
        _wait_for(lambda: time.time() > record.deadline + 0.5, 10, "clock")  # type: ignore[operator]
        worker = _spawn(database_url, log)  # restarted after the deadline passed
        with pytest.raises(WorkflowTimedOut):
            client.result("dl", timeout=60)
        record = client.status("dl")
        assert record.status == "cancelled"
        assert record.error["type"] == "replaykit.core.errors.WorkflowTimedOut"
        assert _lines(log) == ["reserve r1", "long", "release r1"], record  # not run again
    finally:
        (tmp_path / "worker.log.stop").touch()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        client.stop()

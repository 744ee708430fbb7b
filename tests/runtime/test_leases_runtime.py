"""The runtime's side of the lease contract: a worker never runs one instance twice at once."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from replaykit import activity, workflow
from replaykit.core.definitions import Registry
from replaykit.runtime.app import App

STARTS: list[float] = []
INSIDE = threading.Event()


@activity
def slow_step(ctx: Any) -> str:
    STARTS.append(time.time())
    INSIDE.set()
    time.sleep(2.5)
    return "done"


@workflow
def one_slow_step(ctx: Any):  # type: ignore[no-untyped-def]
    return (yield slow_step())


def test_a_worker_never_claims_an_instance_it_is_running(tmp_path: Path) -> None:
    """The lease of a running instance ends under its own worker while every write waits for
    SQLite's write lock (held here by another connection for 2 s, four leases long): the worker
    must not claim the instance again and run the activity a second time beside the first."""
    STARTS.clear()
    INSIDE.clear()
    db = tmp_path / "rk.db"
    app = App(
        f"sqlite:///{db}",
        registry=Registry(),
        workflows=[one_slow_step],
        lease_seconds=0.5,
        poll_interval=0.05,
    )
    with app:
        handle = app.start_workflow(one_slow_step)
        assert INSIDE.wait(10)
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        time.sleep(2.0)
        blocker.execute("ROLLBACK")
        blocker.close()
        assert handle.result(timeout=20) == "done"
    assert len(STARTS) == 1, f"the activity ran {len(STARTS)} times"

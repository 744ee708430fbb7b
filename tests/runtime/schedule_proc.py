"""A worker process for the schedule tests: ``python -m tests.runtime.schedule_proc URL``.

It runs the workers of an App that knows :func:`stamp`, whose one activity writes a row
(instance id, pid) into ``tick_effects`` inside its own transaction, so the test counts how
often each tick's work was done. It runs until killed or until ``RK_PROC_STOP`` exists.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from replaykit import activity, workflow
from replaykit.core.definitions import Registry
from replaykit.runtime.app import App


def _placeholder(session: Any) -> str:
    return "?" if type(session).__module__.startswith("sqlite_utils") else "%s"


@activity(name="tick_effect")
def tick_effect(ctx: Any) -> int:
    p = _placeholder(ctx.session)
    ctx.session.execute(
        f"INSERT INTO tick_effects (instance_id, pid) VALUES ({p}, {p})",
        [ctx.instance_id, os.getpid()],
    )
    return os.getpid()


@workflow(name="stamp")
def stamp(ctx: Any, label: str):  # type: ignore[no-untyped-def]
    pid = yield tick_effect()
    return f"{label}:{pid}"


def main() -> None:
    url = sys.argv[1]
    stop = os.environ.get("RK_PROC_STOP", "/nonexistent")
    app = App(
        url,
        registry=Registry(),
        workflows=[stamp],
        concurrency=4,
        lease_seconds=float(os.environ.get("RK_PROC_LEASE", "2")),
        poll_interval=0.05,
    )
    with app:
        while not os.path.exists(stop):
            time.sleep(0.05)


if __name__ == "__main__":
    main()

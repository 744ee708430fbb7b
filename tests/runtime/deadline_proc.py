"""A worker process for the deadline crash test: ``python -m tests.runtime.deadline_proc URL``.

Its workflow reserves a room (compensated by a release) and then runs a long activity; every
activity start and every compensation appends a line to RK_PROC_LOG. It runs until killed or
until RK_PROC_LOG + ".stop" exists.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Generator
from typing import Any

from replaykit import Command, activity, workflow
from replaykit.core.definitions import Registry
from replaykit.runtime.app import App

LOG = os.environ.get("RK_PROC_LOG", "/dev/null")


def _append(line: str) -> None:
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def release_room(ctx: Any, room: str) -> None:
    _append(f"release {room} {os.getpid()}")


@activity(name="dp_reserve", compensate=release_room, transactional=False)
def reserve_room(ctx: Any, room: str) -> str:
    _append(f"reserve {room} {os.getpid()}")
    return room


@activity(name="dp_long", transactional=False)
def long_step(ctx: Any, seconds: float) -> str:
    _append(f"long {os.getpid()}")
    time.sleep(seconds)
    return "done"


@workflow(name="dp_booking")
def booking(ctx: Any, room: str) -> Generator[Command, Any, str]:
    yield reserve_room(room)
    yield long_step(60.0)
    return "booked"


WORKFLOWS = [booking]


def main() -> None:
    lease = float(os.environ.get("RK_PROC_LEASE", "1"))
    app = App(
        sys.argv[1],
        registry=Registry(),
        workflows=WORKFLOWS,
        lease_seconds=lease,
        poll_interval=0.05,
    )
    with app:
        while not os.path.exists(LOG + ".stop"):
            time.sleep(0.05)


if __name__ == "__main__":
    main()

"""A worker process for the queue tests: ``python -m tests.runtime.queue_proc URL LOG``.

It declares the queues of ``tests/runtime/test_queue_processes.py``; its activity appends one
line per run to LOG (``instance pid start end``, wall-clock seconds), the record the tests check
the limits against. It runs until killed or until LOG + ".stop" exists.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from replaykit import activity, workflow
from replaykit.core.definitions import Registry
from replaykit.runtime.app import App

LOG = os.environ.get("RK_QUEUE_LOG", "/dev/null")
#: (name, concurrency, per_worker, rate) of the queues the tests use. "three" admits at most one
#: unfinished instance per worker, so reaching three at once takes three worker processes (without
#: it, the worker that finishes an instance admits the next at once and one process can do all)
QUEUES: list[tuple[str, int | None, int | None, tuple[int, float] | None]] = [
    ("three", 3, 1, None),
    ("five_per_second", None, None, (5, 1.0)),
]


@activity
def hold(ctx: Any, seconds: float) -> int:
    start = time.time()
    time.sleep(seconds)
    end = time.time()
    line = f"{ctx.instance_id} {os.getpid()} {start:.6f} {end:.6f}\n"
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one short write: lines of processes never interleave
    finally:
        os.close(fd)
    return os.getpid()


@workflow
def job(ctx: Any, seconds: float) -> Any:
    return (yield hold(seconds))


def make_app(url: str, *, workers: bool = True) -> App:
    registry = Registry()
    app = App(
        url,
        registry=registry,
        workflows=[job],
        activities=[hold],
        workers=workers,
        poll_interval=0.1,
        concurrency=8,
    )
    for name, concurrency, per_worker, rate in QUEUES:
        app.queue(name, concurrency=concurrency, per_worker=per_worker, rate=rate)
    return app


def main() -> None:
    app = make_app(sys.argv[1])
    app.start()
    stop = LOG + ".stop"
    try:
        while not os.path.exists(stop):
            time.sleep(0.1)
    finally:
        app.stop()


if __name__ == "__main__":
    main()

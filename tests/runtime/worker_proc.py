"""A worker process for the multi-process tests: ``python -m tests.runtime.worker_proc URL LOG``.

Its activities write an effect row inside their own transaction (exactly-once check), append
start/end lines to LOG (overlap check), and send an outbox event that the relay appends to
LOG + ".outbox" (at-least-once check). It runs until killed or until LOG + ".stop" exists.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from replaykit import Sleep, WaitEvent, activity, workflow
from replaykit.core.definitions import Registry
from replaykit.runtime.app import App

LOG = os.environ.get("RK_PROC_LOG", "/dev/null")


def _append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def _placeholder(session: Any) -> str:
    return "?" if type(session).__module__.startswith("sqlite_utils") else "%s"


@activity
def effect(ctx: Any, tag: str) -> str:
    pid = os.getpid()
    _append(LOG, f"start {ctx.instance_id} {ctx.step} {pid} {time.time():.6f}")
    p = _placeholder(ctx.session)
    ctx.session.execute(
        f"INSERT INTO effects (instance_id, step, pid) VALUES ({p}, {p}, {p})",
        [ctx.instance_id, ctx.step, pid],
    )
    ctx.outbox.send({"type": "effect.done", "data": {"key": f"{ctx.instance_id}:{ctx.step}"}})
    time.sleep(0.002)
    _append(LOG, f"end {ctx.instance_id} {ctx.step} {pid} {time.time():.6f}")
    return f"{tag}:{pid}"


@workflow
def three_effects(ctx: Any, n: int):  # type: ignore[no-untyped-def]
    a = yield effect("a")
    b = yield effect("b")
    c = yield effect("c")
    return [a, b, c]


@workflow
def mixed(ctx: Any, n: int):  # type: ignore[no-untyped-def]
    yield effect("a")
    yield Sleep(0.05)
    yield WaitEvent("go")
    yield effect("b")
    return n


WORKFLOWS = [three_effects, mixed]


def main() -> None:
    url = sys.argv[1]
    lease = float(os.environ.get("RK_PROC_LEASE", "5"))
    delivered = LOG + ".outbox"

    def deliver(event: dict[str, Any]) -> None:
        _append(delivered, event["data"]["key"])

    app = App(
        url,
        registry=Registry(),
        workflows=WORKFLOWS,
        concurrency=4,
        lease_seconds=lease,
        poll_interval=0.05,
        outbox_delivery=deliver,
        outbox_options={"claim_seconds": lease, "initial_backoff": 0.05},
    )
    with app:
        while not os.path.exists(LOG + ".stop"):
            time.sleep(0.05)


if __name__ == "__main__":
    main()

"""A worker process for the channel tests: ``python -m tests.integrations.channel_worker URL``.

Runs the subscriber workflows below until killed or until the file ``$RK_STOP`` exists.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import msgspec

from replaykit import EventTimeout, Receive, Subscribe, activity, workflow
from replaykit.core.definitions import Registry
from replaykit.runtime.app import App


class Spec(msgspec.Struct):
    channel: str
    mode: str = "broadcast"
    count: int = 0  # broadcast: receive this many; competing: receive until idle_timeout
    idle_timeout: float = 30.0


@activity(transactional=False)
def handle(ctx: Any, data: Any) -> int:
    """A little work per message, so that instances are held (and killed) mid-way."""
    time.sleep(0.01)
    return os.getpid()


@workflow
def subscriber(ctx: Any, spec: Spec):  # type: ignore[no-untyped-def]
    yield Subscribe(spec.channel, mode=spec.mode)  # type: ignore[arg-type]
    got: list[Any] = []
    while spec.mode == "competing" or len(got) < spec.count:
        try:
            message = yield Receive(spec.channel, timeout=spec.idle_timeout)
        except EventTimeout:
            break
        yield handle(message.data)
        got.append([message.data, message.metadata])
    return got


WORKFLOWS = [subscriber]


def main() -> None:
    app = App(
        sys.argv[1],
        registry=Registry(),
        workflows=WORKFLOWS,
        activities=[handle],
        concurrency=4,
        lease_seconds=float(os.environ.get("RK_LEASE", "1")),
        poll_interval=0.05,
    )
    stop = os.environ.get("RK_STOP", "/nonexistent")
    with app:
        while not os.path.exists(stop):
            time.sleep(0.05)


if __name__ == "__main__":
    main()

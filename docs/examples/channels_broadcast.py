"""Broadcast and competing channels (docs/integrations/channels.md).

python docs/examples/channels_broadcast.py sqlite:///channels.db
"""

from __future__ import annotations

import sys
import time
from collections.abc import Generator
from typing import Any

from replaykit import EventTimeout, Receive, Subscribe, workflow
from replaykit.runtime.app import App


@workflow
def listener(ctx: Any, count: int) -> Generator[Any, Any, list[str]]:
    """Every listener gets every news message (broadcast)."""
    yield Subscribe("news")
    seen = []
    for _ in range(count):
        message = yield Receive("news", timeout=60)
        seen.append(f"{message.data} ({message.metadata.get('lang', '?')})")
    return seen


@workflow
def worker(ctx: Any) -> Generator[Any, Any, list[int]]:
    """Jobs are shared out: each job goes to exactly one worker (competing)."""
    yield Subscribe("jobs", mode="competing")
    done = []
    while True:
        try:
            message = yield Receive("jobs", timeout=1.0)
        except EventTimeout:
            return done
        done.append(message.data)


def main(database: str) -> dict[str, Any]:
    with App(database, workflows=[listener, worker], poll_interval=0.05) as app:
        listeners = [app.start_workflow(listener, 2) for _ in range(2)]
        workers = [app.start_workflow(worker) for _ in range(3)]
        everyone = [h.instance_id for h in listeners + workers]
        while any(app.status(i).status != "waiting" for i in everyone):
            time.sleep(0.02)  # broadcast reaches those subscribed when it is published
        app.publish("news", "hello", {"lang": "en"})
        app.publish("news", "bonjour", {"lang": "fr"})
        for job in range(6):
            app.publish("jobs", job)
        return {
            "listeners": [h.result(timeout=30) for h in listeners],
            "jobs": sorted(j for h in workers for j in h.result(timeout=30)),
        }


if __name__ == "__main__":
    print(main(sys.argv[1] if len(sys.argv) > 1 else "sqlite:///channels.db"))

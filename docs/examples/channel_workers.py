"""Competing consumers: three worker workflows share one work queue; every job is done once.

``Subscribe(channel, mode="competing")`` makes the channel a queue: each published message goes
to exactly one competing subscriber (also messages published before it subscribed).
Run it: ``python docs/examples/channel_workers.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter
from typing import Any

from replaykit import EventTimeout, Receive, Subscribe, activity, workflow
from replaykit.runtime.app import App

JOBS = 12


@activity
def resize_image(ctx: Any, job: int) -> str:
    return f"thumb-{job}.png"


@workflow
def image_worker(ctx: Any, name: str):  # type: ignore[no-untyped-def]
    yield Subscribe("images", mode="competing")
    done = []
    while True:
        try:
            message = yield Receive("images", timeout=1.0)  # idle for 1 s: the queue is empty
        except EventTimeout:
            return {"worker": name, "jobs": done}
        yield resize_image(message.data["job"])
        done.append(message.data["job"])


def main() -> int:
    url = os.environ.get("REPLAYKIT_DATABASE") or (
        f"sqlite:///{os.path.join(tempfile.mkdtemp(), 'queue.db')}"
    )
    with App(url, workflows=[image_worker], poll_interval=0.1) as app:
        handles = [app.start_workflow(image_worker, f"w{i}") for i in range(3)]
        for job in range(JOBS):
            app.publish("images", {"job": job})
        results = [h.result(60) for h in handles]
    for result in results:
        print(f"{result['worker']} resized {sorted(result['jobs'])}")
    counts = Counter(job for r in results for job in r["jobs"])
    ok = sorted(counts) == list(range(JOBS)) and set(counts.values()) == {1}
    print("OK: every job exactly once" if ok else f"UNEXPECTED: {counts}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""A recurring workflow: ``Recur`` ends each run and starts the next with a new input.

An endless loop would grow one history forever; ``Recur(new_input)`` archives the run's history
and starts a fresh run of the same instance (``continued_from``), so replay stays short. The
viewer and ``replaykit show ID --run N`` show the archived runs.
Run it: ``python docs/examples/recurring_counter.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

import msgspec

from replaykit import Recur, Sleep, activity, workflow
from replaykit.runtime.app import App


class Tick(msgspec.Struct):
    count: int
    limit: int


@activity
def record_tick(ctx: Any, count: int) -> int:
    return count * count


@workflow
def counter(ctx: Any, tick: Tick):  # type: ignore[no-untyped-def]
    square = yield record_tick(tick.count)
    yield Sleep(0.05)  # e.g. an hour between runs in a real job
    if tick.count + 1 < tick.limit:
        yield Recur(Tick(count=tick.count + 1, limit=tick.limit))
    return {"runs": tick.count + 1, "last_square": square}


def main() -> int:
    url = os.environ.get("REPLAYKIT_DATABASE") or (
        f"sqlite:///{os.path.join(tempfile.mkdtemp(), 'counter.db')}"
    )
    with App(url, workflows=[counter], poll_interval=0.1) as app:
        result = app.start_workflow(counter, Tick(0, 4), instance_id="counter-1").result(60)
        record = app.status("counter-1")
        archived = [app.history("counter-1", run=run) for run in range(1, 4)]
    print(f"result {result}; now on run {record.run}; archived runs: {len(archived)}")
    ok = result == {"runs": 4, "last_square": 9} and record.run == 4 and all(archived)
    print("OK" if ok else "UNEXPECTED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

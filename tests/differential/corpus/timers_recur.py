"""Timers and Recur: Sleep and SleepUntil (also one already past), timers due at the same
moment, a long sleep crossed by one clock advance; Recur archiving each run, with a cancel
requested during a run."""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime
from typing import Any

from replaykit import Now, Recur, Sleep, SleepUntil, WaitEvent, workflow

from ..harness import Advance, Cancel, Scenario, SendEvent, StartWorkflow

START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()  # the scripts' clock starts here


@workflow(name="d_sleeper")
def d_sleeper(ctx: Any) -> Generator[Any, Any, list[float]]:
    seen = []
    yield Sleep(10)
    seen.append((yield Now()))
    yield SleepUntil(datetime(2026, 1, 1, 0, 1, tzinfo=UTC))
    seen.append((yield Now()))
    yield SleepUntil(START)  # already past: fires at once
    seen.append((yield Now()))
    yield Sleep(0)
    for seconds in (5, 7, 30):
        yield Sleep(seconds)
    seen.append((yield Now()))
    yield Sleep(86400 * 30)
    seen.append((yield Now()))
    return seen


@workflow(name="d_counter")
def d_counter(ctx: Any, n: int) -> Generator[Any, Any, int]:
    got = yield WaitEvent("d.tick", timeout=100)
    if n >= 3:
        return n + got.data["add"]
    yield Recur(n + got.data["add"])
    return -1  # not reached


SCENARIOS = [
    Scenario(
        "sleep_and_sleep_until",
        workflows=(d_sleeper,),
        script=(
            Advance(5),
            StartWorkflow("d_sleeper", "sleeper"),
            Advance(100),
            Advance(86400 * 31),
        ),
        expect={"sleeper": "completed"},
    ),
    Scenario(
        "recur_archives_each_run",
        workflows=(d_counter,),
        script=(
            StartWorkflow("d_counter", "counter", 0),
            SendEvent("d.tick", {"add": 1}, instance_id="counter"),
            SendEvent("d.tick", {"add": 2}, instance_id="counter"),
            SendEvent("d.tick", {"add": 3}, instance_id="counter"),
        ),
        expect={"counter": "completed"},
    ),
    Scenario(
        "recur_then_cancel_and_timeout",
        workflows=(d_counter,),
        script=(
            StartWorkflow("d_counter", "counter-c", 0),
            SendEvent("d.tick", {"add": 1}, instance_id="counter-c"),
            Cancel("counter-c", "stop counting"),
            StartWorkflow("d_counter", "counter-t", 0),
            Advance(101),
        ),
        expect={"counter-c": "cancelled", "counter-t": "failed"},
    ),
]

"""Schedules, driven from outside: an interval schedule ticking as the clock moves (one instance
per tick), paused and resumed, triggered by hand; a cron schedule."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from replaykit import Now, Sleep, workflow

from ..harness import Advance, Scenario, Schedule, ScheduleAction


@workflow(name="d_tick")
def d_tick(ctx: Any, label: str) -> Generator[Any, Any, list[Any]]:
    now = yield Now()
    yield Sleep(5)
    return [label, now.timestamp()]


SCENARIOS = [
    Scenario(
        "schedule_every_pause_resume_trigger",
        workflows=(d_tick,),
        script=(
            Schedule("d_tick", "every", {"every": 60.0, "schedule_id": "d-every"}),
            Advance(130),
            ScheduleAction("pause", "d-every"),
            Advance(120),
            ScheduleAction("trigger", "d-every"),
            ScheduleAction("resume", "d-every"),
            Advance(70),
        ),
        expect={
            "d-every@2026-01-01T00:01:00.000000Z": "completed",
            "d-every@2026-01-01T00:02:00.000000Z": "completed",
            "d-every@manual-2026-01-01T00:04:10.000000Z": "completed",
            "d-every@2026-01-01T00:05:00.000000Z": "completed",
        },
    ),
    Scenario(
        "schedule_cron",
        workflows=(d_tick,),
        script=(
            Schedule("d_tick", "cron", {"cron": "*/5 * * * *", "schedule_id": "d-cron"}),
            Advance(16 * 60),
        ),
        expect={f"d-cron@2026-01-01T00:{m:02}:00.000000Z": "completed" for m in (5, 10, 15)},
    ),
]

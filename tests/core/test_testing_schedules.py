"""Schedules in replaykit.testing: they tick on the virtual clock, with the catch-up, pause,
trigger and instance-id rules of production (replaykit.core.schedules)."""

from __future__ import annotations

import time

import pytest

from replaykit import InvalidInput, Now, ScheduleNotFound, Sleep, workflow
from replaykit.core.schedules import tick_instance_id
from replaykit.testing import DEFAULT_START, WorkflowEnvironment


@workflow
def tally(ctx, team: str):  # type: ignore[no-untyped-def]
    now = yield Now()
    yield Sleep(30)
    return f"{team}@{now.timestamp()}"


def test_an_hourly_schedule_ticks_through_a_simulated_month_in_well_under_a_second() -> None:
    env = WorkflowEnvironment()
    env.schedule(tally, "ops", cron="0 * * * *", schedule_id="hourly")
    began = time.perf_counter()
    env.advance(30 * 86400)
    elapsed = time.perf_counter() - began
    runs = env.scheduled_runs("hourly")
    assert len(runs) == 30 * 24
    assert [r.instance_id for r in runs[:2]] == [
        tick_instance_id("hourly", DEFAULT_START + 3600),
        tick_instance_id("hourly", DEFAULT_START + 7200),
    ]
    assert all(r.finished for r in runs[:-1])  # the last one still sleeps
    assert runs[0].result() == f"ops@{DEFAULT_START + 3600}"
    assert elapsed < 5.0


def test_a_schedule_in_a_time_zone_ticks_at_local_time() -> None:
    env = WorkflowEnvironment()
    env.schedule(tally, "ops", cron="0 9 * * 1-5", timezone="Europe/Paris", schedule_id="daily")
    env.advance(14 * 86400)  # 2026-01-01 is a Thursday: 10 weekdays in two weeks
    runs = env.scheduled_runs("daily")
    assert len(runs) == 10
    assert runs[0].instance_id == "daily@2026-01-01T08:00:00.000000Z"  # 09:00 in Paris


def test_a_paused_schedule_fires_nothing_and_resumes_from_the_next_tick() -> None:
    env = WorkflowEnvironment()
    env.schedule(tally, "ops", every=60, schedule_id="m")
    env.advance(180)
    env.pause_schedule("m")
    env.advance(600)
    assert len(env.scheduled_runs("m")) == 3
    env.resume_schedule("m")
    env.advance(120)
    assert len(env.scheduled_runs("m")) == 5


def test_after_downtime_the_catch_up_policy_decides_which_missed_ticks_run() -> None:
    counts = {}
    for policy in ("skip", "last", "all"):
        env = WorkflowEnvironment()
        env.schedule(tally, "ops", every=60, catch_up=policy, grace=10, schedule_id="m")
        env.clock.now += 3690  # an hour with no worker: the latest tick is 30 s late
        env.advance(0)
        counts[policy] = len(env.scheduled_runs("m"))
    assert counts == {"skip": 0, "last": 1, "all": 61}


def test_trigger_starts_one_instance_now_even_while_paused() -> None:
    env = WorkflowEnvironment()
    env.schedule(tally, "ops", every=3600, schedule_id="m", paused=True)
    run = env.trigger_schedule("m")
    assert run.instance_id.startswith("m@manual-")
    assert run.result() == f"ops@{DEFAULT_START}"
    assert env.get_schedule("m").next_fire_at is None


def test_deleting_a_schedule_stops_it_and_unknown_ids_raise_schedule_not_found() -> None:
    env = WorkflowEnvironment()
    env.schedule(tally, "ops", every=60, schedule_id="m")
    assert env.delete_schedule("m") is True
    env.advance(600)
    assert env.scheduled_runs("m") == []
    assert env.delete_schedule("m") is False
    with pytest.raises(ScheduleNotFound):
        env.pause_schedule("m")
    with pytest.raises(ScheduleNotFound):
        env.trigger_schedule("m")


def test_bad_input_for_a_schedule_is_refused_before_anything_is_stored() -> None:
    env = WorkflowEnvironment()
    with pytest.raises(InvalidInput):
        env.schedule(tally, 42, every=60)  # team must be a str
    with pytest.raises(InvalidInput):
        env.schedule(tally, "ops", cron="0 25 * * *")
    assert env.list_schedules() == []

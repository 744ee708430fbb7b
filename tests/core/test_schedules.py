"""Schedules, pure part: ticks of cron (in a time zone) and intervals, catch-up policies, tick
instance ids, and typed errors for bad specs (replaykit.core.schedules)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest

from replaykit import InvalidInput
from replaykit.core.schedules import (
    Schedule,
    latest_tick,
    make_spec,
    merge_schedule,
    new_schedule,
    next_tick,
    plan_firing,
    set_paused,
    tick_instance_id,
    tick_of,
    upcoming,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def at(*parts: int, tz: str = "UTC") -> float:
    return datetime(*parts, tzinfo=ZoneInfo(tz)).timestamp()  # type: ignore[misc]


def due(spec_kwargs: dict[str, object], next_fire_at: float) -> Schedule:
    spec = make_spec(**spec_kwargs)  # type: ignore[arg-type]
    return Schedule(schedule_id="s", workflow="w", spec=spec, next_fire_at=next_fire_at)


def test_cron_ticks_follow_the_expression() -> None:
    spec = make_spec(cron="*/5 * * * *")
    assert next_tick(spec, T0) == T0 + 300
    assert next_tick(spec, T0 + 1) == T0 + 300
    assert latest_tick(spec, T0 + 299.5) == T0
    assert latest_tick(spec, T0 + 300) == T0 + 300


def test_cron_ticks_in_a_time_zone_keep_local_time_across_daylight_saving() -> None:
    spec = make_spec(cron="0 9 * * *", timezone="Europe/Paris")
    before = next_tick(spec, at(2026, 3, 28, 12, tz="Europe/Paris"))
    after = next_tick(spec, before)
    assert before == at(2026, 3, 29, 9, tz="Europe/Paris")
    assert after == at(2026, 3, 30, 9, tz="Europe/Paris")
    assert after - before == 86400  # both 09:00 local, though the clocks moved on the 29th
    assert before - next_tick(spec, at(2026, 3, 27, 12, tz="Europe/Paris")) == 82800


def test_a_daily_job_fires_once_on_the_night_clocks_go_back() -> None:
    daily = make_spec(cron="30 2 * * *", timezone="Europe/Paris")
    first = next_tick(daily, at(2026, 10, 24, 12, tz="Europe/Paris"))
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC).timestamp()  # 02:30 CEST
    assert next_tick(daily, first) == at(2026, 10, 26, 2, 30, tz="Europe/Paris")
    assert latest_tick(daily, first + 3 * 3600) == first


def test_an_every_half_hour_job_fires_in_both_repeated_hours() -> None:
    spec = make_spec(cron="*/30 * * * *", timezone="Europe/Paris")
    start = datetime(2026, 10, 25, 0, 0, tzinfo=UTC).timestamp()  # 02:00 CEST
    ticks = [start]
    for _ in range(4):
        ticks.append(next_tick(spec, ticks[-1]))
    assert [b - a for a, b in itertools.pairwise(ticks)] == [1800] * 4


def test_interval_ticks_are_multiples_of_the_interval_from_start_at() -> None:
    spec = make_spec(every=60)
    assert next_tick(spec, T0 + 0.5) == T0 + 60
    assert latest_tick(spec, T0 + 59.9) == T0
    offset = make_spec(every=60, start_at=T0 + 7)
    assert next_tick(offset, T0) == T0 + 7
    assert next_tick(offset, T0 + 7) == T0 + 67


def test_an_interval_never_ticks_before_its_start_at() -> None:
    later = make_spec(every=60, start_at=T0 + 3600 + 7)
    assert next_tick(later, T0) == T0 + 3600 + 7
    assert next_tick(later, T0 + 3600 + 6.5) == T0 + 3600 + 7
    assert next_tick(later, T0 + 3600 + 7) == T0 + 3600 + 67


def test_fractional_intervals_never_repeat_a_tick() -> None:
    spec = make_spec(every=0.1)
    tick = T0
    seen = []
    for _ in range(200):
        tick = next_tick(spec, tick)
        seen.append(tick_instance_id("s", tick))
    assert len(set(seen)) == 200


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron": "61 * * * *"}, "invalid cron"),
        ({"cron": "every day"}, "5 fields"),
        ({"cron": "* * * *"}, "5 fields"),
        ({"cron": "*/5 * * * *", "every": 60}, "exactly one"),
        ({}, "exactly one"),
        ({"every": 0}, "positive"),
        ({"every": -5}, "positive"),
        ({"every": float("inf")}, "positive"),
        ({"every": "60"}, "number"),
        ({"every": True}, "number"),
        ({"every": 60, "timezone": "Mars/Olympus"}, "time zone"),
        ({"every": 60, "timezone": "../etc/passwd"}, "time zone"),
        ({"every": 60, "catch_up": "some"}, "catch_up"),
        ({"every": 60, "grace": 0}, "grace"),
        ({"every": 60, "start_at": "monday"}, "start_at"),
        ({"every": 60, "start_at": float("nan")}, "start_at"),
    ],
)
def test_bad_specs_are_refused_with_invalid_input(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        make_spec(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("schedule_id", ["", "x" * 151, "a@b"])
def test_bad_schedule_ids_are_refused(schedule_id: str) -> None:
    with pytest.raises(InvalidInput, match="schedule_id"):
        new_schedule(schedule_id, "w", make_spec(every=1), T0)


def test_a_new_schedule_first_fires_at_the_first_tick_after_its_creation() -> None:
    schedule = new_schedule("s", "w", make_spec(every=60), T0 + 10)
    assert schedule.next_fire_at == T0 + 60
    assert upcoming(schedule, 3) == [T0 + 60, T0 + 120, T0 + 180]
    assert new_schedule("s", "w", make_spec(every=60), T0, paused=True).next_fire_at is None


def test_catch_up_all_fires_every_missed_tick_oldest_first_in_bounded_batches() -> None:
    schedule = due({"every": 60, "catch_up": "all"}, T0 + 60)
    firing = plan_firing(schedule, T0 + 60 * 250 + 5)
    assert firing.ticks == [T0 + 60 * k for k in range(1, 101)]
    assert firing.next_fire_at == T0 + 60 * 101


def test_catch_up_last_fires_only_the_latest_missed_tick() -> None:
    firing = plan_firing(due({"every": 60, "catch_up": "last"}, T0 + 60), T0 + 3600 + 30)
    assert firing.ticks == [T0 + 3600]
    assert firing.next_fire_at == T0 + 3660


def test_catch_up_skip_fires_the_latest_tick_only_within_grace() -> None:
    late = plan_firing(due({"every": 60, "grace": 10}, T0 + 60), T0 + 3600 + 30)
    assert late.ticks == [] and late.next_fire_at == T0 + 3660
    on_time = plan_firing(due({"every": 60, "grace": 10}, T0 + 60), T0 + 3600 + 2)
    assert on_time.ticks == [T0 + 3600]


def test_tick_instance_ids_are_derived_from_schedule_and_tick() -> None:
    tick = T0 + 300
    assert tick_instance_id("daily", tick) == "daily@2026-01-01T00:05:00.000000Z"
    assert tick_instance_id("daily", tick) == tick_instance_id("daily", tick)
    assert tick_of(tick_instance_id("daily", tick)) == tick
    assert tick_of("plain-id") is None


def test_saving_the_same_spec_again_changes_nothing() -> None:
    stored = new_schedule("s", "w", make_spec(every=60), T0)
    again = new_schedule("s", "w", make_spec(every=60), T0 + 1000)
    assert merge_schedule(stored, again) is None


def test_saving_a_new_spec_counts_from_then_and_keeps_a_pause() -> None:
    stored = set_paused(new_schedule("s", "w", make_spec(every=60), T0), True, T0)
    changed = merge_schedule(stored, new_schedule("s", "w", make_spec(every=30), T0 + 1000))
    assert changed is not None
    assert changed.spec.every == 30 and changed.paused and changed.next_fire_at is None
    resumed = set_paused(changed, False, T0 + 2000)
    assert resumed.next_fire_at == T0 + 2010
    assert msgspec.json.decode(msgspec.json.encode(resumed), type=Schedule) == resumed

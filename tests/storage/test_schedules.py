"""The schedule part of the storage contract, on every adapter (migration 0015)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from replaykit import ScheduleNotFound, Sleep, workflow
from replaykit.core.definitions import Registry
from replaykit.core.history import WorkflowStarted, decode_event
from replaykit.core.schedules import make_spec, new_schedule, tick_instance_id
from replaykit.storage import Storage
from replaykit.testing import WorkflowEnvironment

T0 = 1_767_225_600.0


@workflow(name="nap")
def nap(ctx):  # type: ignore[no-untyped-def]
    yield Sleep(1)


def test_a_saved_schedule_is_read_back_and_listed(storage: Storage) -> None:
    spec = make_spec(cron="*/5 * * * *", timezone="Europe/Paris", input={"team": "ops"})
    saved, created = storage.save_schedule(new_schedule("b", "report", spec, T0))
    storage.save_schedule(new_schedule("a", "report", make_spec(every=60), T0))
    assert created and storage.get_schedule("b") == saved
    assert [s.schedule_id for s in storage.list_schedules()] == ["a", "b"]
    assert storage.next_schedule_at() == T0 + 60
    assert storage.get_schedule("missing") is None


def test_saving_an_unchanged_schedule_keeps_its_state(storage: Storage) -> None:
    storage.save_schedule(new_schedule("s", "w", make_spec(every=60), T0))
    storage.fire_due_schedules(now=T0 + 60)
    again, changed = storage.save_schedule(new_schedule("s", "w", make_spec(every=60), T0 + 70))
    assert not changed and again.last_tick == T0 + 60 and again.next_fire_at == T0 + 120
    other, changed = storage.save_schedule(new_schedule("s", "w", make_spec(every=30), T0 + 70))
    assert changed and other.next_fire_at == T0 + 90
    assert storage.get_schedule("s") == other


def test_firing_creates_one_pending_instance_per_due_tick(storage: Storage) -> None:
    spec = make_spec(every=60, catch_up="all", input=[1, 2])
    storage.save_schedule(new_schedule("s", "w", spec, T0))
    assert storage.fire_due_schedules(now=T0 + 59) == []
    started = storage.fire_due_schedules(now=T0 + 185)
    assert started == [tick_instance_id("s", T0 + k * 60) for k in (1, 2, 3)]
    record = storage.get_instance(started[0])
    assert record is not None and record.status == "pending" and record.input == [1, 2]
    first = decode_event(storage.load_history(started[0])[0])
    assert isinstance(first, WorkflowStarted) and first.workflow == "w" and first.input == [1, 2]
    assert storage.fire_due_schedules(now=T0 + 185) == []
    assert storage.next_schedule_at() == T0 + 240


def test_a_tick_whose_instance_exists_starts_nothing_again(
    storage: Storage, open_new: Callable[..., Storage]
) -> None:
    """Two workers that both read the schedule before either moved it on: the derived id and
    the primary key leave one instance for the tick."""
    schedule = new_schedule("s", "w", make_spec(every=60), T0)
    storage.save_schedule(schedule)
    assert storage.fire_due_schedules(now=T0 + 61) == [tick_instance_id("s", T0 + 60)]
    storage.delete_schedule("s")
    storage.save_schedule(schedule)  # back at its first tick, as a stale reader would see it
    other = open_new()
    assert other.fire_due_schedules(now=T0 + 61) == []
    assert len(storage.list_instances(workflow="w")) == 1


def test_paused_schedules_do_not_fire_and_resume_from_now(storage: Storage) -> None:
    storage.save_schedule(new_schedule("s", "w", make_spec(every=60), T0))
    paused = storage.pause_schedule("s", True, now=T0 + 10)
    assert paused.paused and paused.next_fire_at is None
    assert storage.next_schedule_at() is None
    assert storage.fire_due_schedules(now=T0 + 600) == []
    resumed = storage.pause_schedule("s", False, now=T0 + 600)
    assert resumed.next_fire_at == T0 + 660 and storage.get_schedule("s") == resumed
    with pytest.raises(ScheduleNotFound):
        storage.pause_schedule("missing", True, now=T0)


def test_deleting_a_schedule_keeps_its_instances(storage: Storage) -> None:
    storage.save_schedule(new_schedule("s", "w", make_spec(every=60), T0))
    started = storage.fire_due_schedules(now=T0 + 60)
    assert storage.delete_schedule("s") is True
    assert storage.delete_schedule("s") is False
    assert storage.get_instance(started[0]) is not None
    assert storage.fire_due_schedules(now=T0 + 6000) == []


@pytest.mark.parametrize("catch_up", ["skip", "last", "all"])
def test_the_database_and_the_test_environment_fire_the_same_ticks(
    storage: Storage, catch_up: str
) -> None:
    """The same schedule, polled at the same (irregular) times with gaps, starts the same
    instances on the database and in replaykit.testing."""
    env = WorkflowEnvironment(registry=Registry())
    env.registry.add_workflow(nap)
    spec = {"cron": "*/5 * * * *", "timezone": "Europe/Paris", "catch_up": catch_up, "grace": 30}
    schedule = new_schedule("s", "nap", make_spec(**spec), T0)  # type: ignore[arg-type]
    storage.save_schedule(schedule)
    env.schedules.save(schedule)
    polls = [T0 + 299, T0 + 301, T0 + 610, T0 + 4000, T0 + 4210, T0 + 90_000, T0 + 90_001]
    for now in polls:
        assert storage.fire_due_schedules(now=now) == env.fire_due_schedules(now), now
        assert storage.next_schedule_at() == env.schedules.next_at()
    assert storage.get_schedule("s") == env.get_schedule("s")

"""Schedules in the runtime, on each adapter: the workers' timer loop fires them, App's calls
create, pause, resume, trigger and delete them (one process; see test_schedule_processes.py for
several)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import pytest

from replaykit import InvalidInput, ScheduleNotFound, workflow
from replaykit.core.definitions import Registry
from replaykit.core.schedules import tick_of
from replaykit.runtime.app import App

MakeApp = Callable[..., App]


@workflow(name="ping")
def ping(ctx, label: str):  # type: ignore[no-untyped-def]
    return label
    yield  # a generator


@workflow(name="standup")
def standup(ctx):  # type: ignore[no-untyped-def]
    return "done"
    yield


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_workers_fire_a_schedule_once_per_tick_and_the_instances_run(
    make_app: MakeApp, registry: Registry
) -> None:
    app = make_app()
    app.schedule(ping, "hi", every=0.25, catch_up="all", schedule_id="fast")
    with app:
        wait_for(lambda: len(app.list_instances(workflow="ping", status="completed")) >= 4)
    done = app.list_instances(workflow="ping", limit=1000)
    ticks = sorted(tick_of(r.instance_id) or 0.0 for r in done)
    assert all(b - a == pytest.approx(0.25) for a, b in itertools.pairwise(ticks))
    assert app.result(done[-1].instance_id) == "hi"
    schedule = app.get_schedule("fast")
    assert schedule.last_tick == ticks[-1] and schedule.next_fire_at == ticks[-1] + 0.25


def test_pause_resume_trigger_and_delete_from_the_app(
    make_app: MakeApp, registry: Registry
) -> None:
    app = make_app(workers=False)
    app.schedule(ping, "x", cron="0 0 1 1 *", schedule_id="yearly")
    assert [s.schedule_id for s in app.list_schedules()] == ["yearly"]
    assert app.pause_schedule("yearly").next_fire_at is None
    assert app.resume_schedule("yearly").next_fire_at is not None
    handle = app.trigger_schedule("yearly")
    assert handle.instance_id.startswith("yearly@manual-")
    assert app.status(handle.instance_id).input == "x"
    assert app.delete_schedule("yearly") is True
    with pytest.raises(ScheduleNotFound):
        app.get_schedule("yearly")
    with pytest.raises(ScheduleNotFound):
        app.trigger_schedule("yearly")


def test_the_decorator_saves_its_schedule_when_the_app_starts(
    make_app: MakeApp, registry: Registry
) -> None:
    app = make_app(workers=False)

    app.scheduled(cron="30 9 * * 1-5", timezone="Europe/Paris", schedule_id="standup")(standup)
    assert app.list_schedules() == []
    with app:
        stored = app.get_schedule("standup")
    assert stored.workflow == "standup" and stored.spec.timezone == "Europe/Paris"


def test_bad_schedules_are_refused_with_invalid_input_and_store_nothing(
    make_app: MakeApp, registry: Registry
) -> None:
    app = make_app(workers=False)
    for kwargs in ({"cron": "* * *"}, {"every": -1}, {"every": 5, "timezone": "Nowhere/City"}):
        with pytest.raises(InvalidInput):
            app.schedule(ping, "x", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        app.schedule(ping, 42, every=5)  # label must be a str
    with pytest.raises(InvalidInput):
        app.scheduled(every=0)
    assert app.list_schedules() == []


def test_an_interval_schedule_with_a_later_start_at_first_fires_at_start_at(
    make_app: MakeApp, registry: Registry
) -> None:
    app = make_app(workers=False)
    start = time.time() + 3600 + 7
    saved = app.schedule(ping, "later", every=60, start_at=start, schedule_id="later")
    assert saved.next_fire_at == pytest.approx(start)
    assert app.get_schedule("later").next_fire_at == pytest.approx(start)


def test_an_empty_schedule_id_is_refused_not_replaced_by_the_workflow_name(
    make_app: MakeApp, registry: Registry
) -> None:
    app = make_app(workers=False)
    with pytest.raises(InvalidInput):
        app.schedule(ping, "x", every=60, schedule_id="")
    assert app.list_schedules() == []

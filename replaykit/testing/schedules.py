"""Schedules in the test environment: stored in memory, ticking on the virtual clock.

The store keeps :class:`~replaykit.core.schedules.Schedule` records by the rules the SQL
adapters keep (``storage_adapters/sql_schedules.py``): the same ``replaykit.core.schedules``
functions decide the ticks, the catch-up, pausing and the tick's instance id, and a tick whose
instance exists starts nothing. :meth:`ScheduleEnvironment.advance` (the environment's) fires
them as virtual time passes, between timers, so a month of ticks runs in milliseconds.

>>> env.schedule(report, cron="0 9 * * 1-5", timezone="Europe/Paris", schedule_id="daily")
>>> env.advance(30 * 86400)                      # about 22 instances, each run to its end
>>> env.scheduled_runs("daily")                  # the TestRuns the schedule started
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Unpack

from ..core.definitions import Registry, Workflow
from ..core.errors import ScheduleNotFound
from ..core.history import WorkflowStarted
from ..core.schedules import (
    Schedule,
    ScheduleOptions,
    build_schedule,
    fired,
    manual_instance_id,
    merge_schedule,
    plan_firing,
    set_paused,
    started_event,
    tick_instance_id,
)
from .clock import VirtualClock

if TYPE_CHECKING:
    from .run import TestRun


class MemorySchedules:
    """The schedules table of the in-memory store."""

    def __init__(self) -> None:
        self.rows: dict[str, Schedule] = {}

    def save(self, schedule: Schedule) -> tuple[Schedule, bool]:
        stored = self.rows.get(schedule.schedule_id)
        if stored is None:
            self.rows[schedule.schedule_id] = schedule
            return schedule, True
        merged = merge_schedule(stored, schedule)
        if merged is None:
            return stored, False
        self.rows[schedule.schedule_id] = merged
        return merged, True

    def get(self, schedule_id: str) -> Schedule:
        found = self.rows.get(schedule_id)
        if found is None:
            raise ScheduleNotFound(f"no schedule with id {schedule_id!r}")
        return found

    def pause(self, schedule_id: str, paused: bool, now: float) -> Schedule:
        changed = set_paused(self.get(schedule_id), paused, now)
        self.rows[schedule_id] = changed
        return changed

    def next_at(self) -> float | None:
        due = [s.next_fire_at for s in self.rows.values() if s.next_fire_at is not None]
        return min(due, default=None)

    def fire_due(self, now: float, limit: int = 100) -> list[tuple[Schedule, list[float]]]:
        """Move every due schedule on: (schedule, the ticks to start) for each."""
        due = sorted(
            (s for s in self.rows.values() if s.next_fire_at is not None and s.next_fire_at <= now),
            key=lambda s: (s.next_fire_at, s.schedule_id),
        )[:limit]
        found = []
        for schedule in due:
            firing = plan_firing(schedule, now)
            self.rows[schedule.schedule_id] = fired(schedule, firing, now)
            found.append((schedule, firing.ticks))
        return found


class ScheduleEnvironment:
    """The schedule calls of :class:`~replaykit.testing.WorkflowEnvironment`, as App's."""

    registry: Registry
    clock: VirtualClock
    runs: dict[str, TestRun]
    schedules: MemorySchedules

    if TYPE_CHECKING:  # provided by WorkflowEnvironment

        def _create(self, wf: Workflow[Any, Any], started: WorkflowStarted) -> TestRun: ...

        def run_until_idle(self) -> None: ...

    def schedule(
        self,
        workflow: Workflow[Any, Any] | str,
        input: Any = None,
        **options: Unpack[ScheduleOptions],
    ) -> Schedule:
        """Save a schedule (as ``App.schedule``); it fires as virtual time passes."""
        wf = self.registry.workflow(workflow) if isinstance(workflow, str) else workflow
        return self.schedules.save(build_schedule(wf, input, self.clock.now, **options))[0]

    def get_schedule(self, schedule_id: str) -> Schedule:
        return self.schedules.get(schedule_id)

    def list_schedules(self) -> list[Schedule]:
        return [self.schedules.rows[k] for k in sorted(self.schedules.rows)]

    def pause_schedule(self, schedule_id: str) -> Schedule:
        return self.schedules.pause(schedule_id, True, self.clock.now)

    def resume_schedule(self, schedule_id: str) -> Schedule:
        return self.schedules.pause(schedule_id, False, self.clock.now)

    def delete_schedule(self, schedule_id: str) -> bool:
        return self.schedules.rows.pop(schedule_id, None) is not None

    def trigger_schedule(self, schedule_id: str) -> TestRun:
        """Start the schedule's workflow now, once, outside its ticks (as App's)."""
        schedule = self.schedules.get(schedule_id)
        instance_id = manual_instance_id(schedule_id, self.clock.now)
        run = self.runs.get(instance_id) or self._start_for(schedule, instance_id, self.clock.now)
        self.run_until_idle()
        return run

    def scheduled_runs(self, schedule_id: str) -> list[TestRun]:
        """The runs a schedule started (ticks and triggers), oldest first."""
        prefix = f"{schedule_id}@"
        return [run for key, run in sorted(self.runs.items()) if key.startswith(prefix)]

    def fire_due_schedules(self, now: float) -> list[str]:
        """Create the instances of the ticks due at ``now`` (as ``Storage.fire_due_schedules``);
        they run at the next ``run_until_idle``."""
        started = []
        for schedule, ticks in self.schedules.fire_due(now):
            for tick in ticks:
                instance_id = tick_instance_id(schedule.schedule_id, tick)
                if instance_id not in self.runs:
                    self._start_for(schedule, instance_id, now)
                    started.append(instance_id)
        return started

    def _start_for(self, schedule: Schedule, instance_id: str, now: float) -> TestRun:
        wf = self.registry.workflow(schedule.workflow)
        return self._create(wf, started_event(schedule, instance_id, now))


__all__ = ["MemorySchedules", "ScheduleEnvironment"]

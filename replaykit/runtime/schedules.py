"""The App's schedule operations: create, list, pause, resume, trigger, delete.

What a schedule is and when it ticks: :mod:`replaykit.core.schedules`. Ticks are fired by the
workers' timer loop (:meth:`Worker._timer_loop` calls ``Storage.fire_due_schedules``), by
whichever worker gets there first; the tick's derived instance id makes a second start a no-op.

>>> app.schedule(report, cron="*/5 * * * *", input=ReportInput(team="ops"),
...              timezone="Europe/Paris", catch_up="skip", schedule_id="ops-report")
>>> @app.scheduled(every=3600)
... @workflow
... def hourly(ctx): ...
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ..core.definitions import Registry, Workflow
from ..core.errors import InvalidInput, ScheduleNotFound
from ..core.history import encode_event
from ..core.schedules import (
    Schedule,
    make_spec,
    manual_instance_id,
    new_schedule,
    started_event,
)
from ..storage import InstanceRecord, Storage
from .clock import Clock
from .worker import Worker

W = TypeVar("W", bound=Workflow[Any, Any])


class ScheduleClient:
    """Mixed into :class:`~replaykit.runtime.app.App`."""

    _declared: list[tuple[Workflow[Any, Any], dict[str, Any]]]
    clock: Clock
    registry: Registry
    worker: Worker | None
    started: bool

    if TYPE_CHECKING:  # provided by App

        @property
        def storage(self) -> Storage: ...

        def _workflow(self, workflow: Workflow[Any, Any] | str) -> Workflow[Any, Any]: ...

        def _wake(self) -> None: ...

    def schedule(
        self,
        workflow: Workflow[Any, Any] | str,
        input: Any = None,
        *,
        cron: str | None = None,
        every: float | None = None,
        timezone: str = "UTC",
        catch_up: str = "skip",
        grace: float = 60.0,
        start_at: float | datetime | None = None,
        schedule_id: str | None = None,
        paused: bool = False,
    ) -> Schedule:
        """Start ``workflow`` with ``input`` on every tick of ``cron`` (in ``timezone``) or
        every ``every`` seconds (from ``start_at``, default the Unix epoch), durably.

        ``schedule_id`` defaults to the workflow's name. Saving a schedule that exists with
        the same workflow and spec changes nothing (declare it at every start); with a new
        spec it is replaced and counts from now (pausing is kept). ``catch_up`` says what
        happens to ticks missed while no worker ran: ``"skip"`` them (the latest still fires
        if at most ``grace`` seconds late), run only the ``"last"``, or run ``"all"``.
        Raises InvalidInput for a bad cron expression, time zone, interval, policy or input.
        """
        wf = self._workflow(workflow)
        raw = wf.encode_input(input) if wf.takes_input else None
        spec = make_spec(
            cron=cron,
            every=every,
            timezone=timezone,
            catch_up=catch_up,
            grace=grace,
            start_at=start_at,
            input=raw,
        )
        now = self.clock.time()
        wanted = new_schedule(schedule_id or wf.name, wf.name, spec, now, paused=paused)
        stored, _changed = self.storage.save_schedule(wanted)
        if self.worker is not None and stored.next_fire_at is not None:
            self.worker.timer_scheduled(stored.next_fire_at)
        return stored

    def scheduled(self, **options: Any) -> Callable[[W], W]:
        """Decorator form of :meth:`schedule` (same keyword arguments), above ``@workflow``;
        the schedule is saved when the app starts (at once if it has started)."""
        if "schedule_id" in options and options["schedule_id"] is None:
            raise InvalidInput("schedule_id must be a string")
        make_spec(**{k: v for k, v in options.items() if k in _SPEC_OPTIONS})  # fail early

        def register(wf: W) -> W:
            if not isinstance(wf, Workflow):
                raise InvalidInput("@app.scheduled(...) goes above @workflow")
            self._workflow(wf)
            if self.started:
                self.schedule(wf, **options)
            else:
                self._declared.append((wf, options))
            return wf

        return register

    def _save_declared(self) -> None:
        while self._declared:
            wf, options = self._declared.pop(0)
            self.schedule(wf, **options)

    def get_schedule(self, schedule_id: str) -> Schedule:
        """The stored schedule; raises ScheduleNotFound."""
        found = self.storage.get_schedule(schedule_id)
        if found is None:
            raise ScheduleNotFound(f"no schedule with id {schedule_id!r}")
        return found

    def list_schedules(self) -> list[Schedule]:
        """Every schedule, by id, with ``next_fire_at`` (None while paused)."""
        return self.storage.list_schedules()

    def pause_schedule(self, schedule_id: str) -> Schedule:
        """Stop firing until :meth:`resume_schedule`; raises ScheduleNotFound."""
        return self.storage.pause_schedule(schedule_id, True, now=self.clock.time())

    def resume_schedule(self, schedule_id: str) -> Schedule:
        """Fire again from the next tick after now (ticks missed while paused are not caught
        up); raises ScheduleNotFound."""
        resumed = self.storage.pause_schedule(schedule_id, False, now=self.clock.time())
        if self.worker is not None and resumed.next_fire_at is not None:
            self.worker.timer_scheduled(resumed.next_fire_at)
        return resumed

    def delete_schedule(self, schedule_id: str) -> bool:
        """Delete the schedule (instances it started stay); False if there was none."""
        return self.storage.delete_schedule(schedule_id)

    def _trigger(self, schedule_id: str) -> tuple[str, Schedule]:
        """Start the schedule's workflow now, outside its ticks (``App.trigger_schedule``)."""
        schedule = self.get_schedule(schedule_id)
        now = self.clock.time()
        instance_id = manual_instance_id(schedule_id, now)
        record = InstanceRecord(
            instance_id=instance_id,
            workflow=schedule.workflow,
            status="pending",
            input=schedule.spec.input,
            created_at=now,
            updated_at=now,
            history_len=1,
        )
        started = started_event(schedule, instance_id, now)
        self.storage.create_instance(record, encode_event(started))
        self._wake()
        return instance_id, schedule


_SPEC_OPTIONS = ("cron", "every", "timezone", "catch_up", "grace", "start_at")

__all__ = ["ScheduleClient"]

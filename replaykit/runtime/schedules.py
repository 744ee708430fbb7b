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
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from ..core.definitions import Registry, Workflow
from ..core.errors import InvalidInput, ScheduleNotFound
from ..core.schedules import (
    Schedule,
    ScheduleOptions,
    build_schedule,
    manual_instance_id,
    spec_of,
)
from ..storage import Storage, scheduled_instance
from .clock import Clock
from .worker import Worker

W = TypeVar("W", bound=Workflow[Any, Any])


class ScheduleClient:
    """Mixed into :class:`~replaykit.runtime.app.App`."""

    _schedules_declared: list[tuple[Workflow[Any, Any], ScheduleOptions]]
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
        **options: Unpack[ScheduleOptions],
    ) -> Schedule:
        """Start ``workflow`` with ``input`` on every tick, durably. Options: ``cron`` (an
        expression, in ``timezone``, default UTC) or ``every`` (seconds, from ``start_at``,
        default the Unix epoch); ``catch_up`` (``"skip"``, ``"last"``, ``"all"``) with
        ``grace`` (s, default 60); ``schedule_id`` (default the workflow's name); ``paused``.

        Saving a schedule that exists with the same workflow and spec changes nothing (declare
        it at every start); with a new spec it is replaced and counts from now (pausing is
        kept). ``catch_up`` says what happens to ticks missed while no worker ran: ``"skip"``
        them (the latest still fires if at most ``grace`` seconds late), run only the
        ``"last"``, or run ``"all"``. Raises InvalidInput for a bad cron expression, time zone,
        interval, policy or input; nothing is stored then.
        """
        wf = self._workflow(workflow)
        wanted = build_schedule(wf, input, self.clock.time(), **options)
        stored, _changed = self.storage.save_schedule(wanted)
        if self.worker is not None and stored.next_fire_at is not None:
            self.worker.timer_scheduled(stored.next_fire_at)
        return stored

    def scheduled(self, **options: Unpack[ScheduleOptions]) -> Callable[[W], W]:
        """Decorator form of :meth:`schedule` (same keyword arguments), above ``@workflow``;
        the schedule is saved when the app starts (at once if it has started)."""
        spec_of(options)  # a bad option fails here, not at start

        def register(wf: W) -> W:
            if not isinstance(wf, Workflow):
                raise InvalidInput("@app.scheduled(...) goes above @workflow")
            self._workflow(wf)
            if self.started:
                self.schedule(wf, **options)
            else:
                self._schedules_declared.append((wf, options))
            return wf

        return register

    def _save_declared_schedules(self) -> None:
        while self._schedules_declared:
            wf, options = self._schedules_declared.pop(0)
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
        self.storage.create_instance(*scheduled_instance(schedule, instance_id, now))
        self._wake()
        return instance_id, schedule


__all__ = ["ScheduleClient"]

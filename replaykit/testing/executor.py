"""Runs the instances of the test environment the way a worker runs them in production.

The loop is the production executor's (``replaykit.runtime.executor``): feed the inbox, apply the
effects of every issued command (:mod:`replaykit.core.effects` plans them), run the activities one
at a time, and after each activity, or when nothing is left to run, commit the step to the
:class:`~replaykit.testing.store.MemoryStore`, which then delivers what the waits can take. Only the
store differs: dicts instead of tables, and a virtual clock.
"""

from __future__ import annotations

import inspect
import random as _random
import uuid as _uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from ..core.codec import to_builtins
from ..core.commands import ActivityCall, Compensate
from ..core.decisions import Decision, ScheduledCommand
from ..core.definitions import Registry
from ..core.effects import (
    CancelChild,
    CreateChild,
    Effect,
    Finish,
    Record,
    RegisterWait,
    RunActivity,
    Send,
    SetTimer,
    SkipMarker,
    Subscription,
)
from ..core.errors import ReplayKitError, UnknownWorkflow
from ..core.history import Event
from ..core.outcomes import activity_outcome, call_of
from .activity import OutboxRecorder, TestActivityContext, run_bounded
from .clock import VirtualClock
from .run import TestRun
from .store import MemoryStep, MemoryStore


class SeededValues:
    """``Uuid``, ``Random`` and ``SideEffect`` values in tests: from a seeded generator."""

    def __init__(self, seed: int) -> None:
        self.generator = _random.Random(seed)

    def uuid(self) -> str:
        return str(_uuid.UUID(int=self.generator.getrandbits(128), version=4))

    def random(self) -> float:
        return self.generator.random()

    def side_effect(self, fn: Callable[[], Any]) -> Any:
        return fn()


class MemoryExecutor:
    """The running half of :class:`~replaykit.testing.WorkflowEnvironment`."""

    registry: Registry
    fakes: dict[str, Callable[..., Any]]
    clock: VirtualClock
    values: SeededValues
    store: MemoryStore
    outbox: OutboxRecorder
    runs: dict[str, TestRun]

    def _drive(self, run: TestRun) -> None:
        """Run ``run`` until it waits or ends (the production executor's loop)."""
        self._take_inbox(run)
        while True:
            self._drain(run)
            activity = self._next_activity(run)
            if activity is None or run.interpreter.finished:
                if self._commit(run):
                    return
                continue
            if self._run_activity(run, activity) and self._commit(run):
                return

    # -- feeding ------------------------------------------------------------------------------

    def _take_inbox(self, run: TestRun) -> None:
        inbox = self.store.inbox(run.instance_id)
        first = True
        while inbox:
            if not first:
                self._plan_marker(run)
            first = False
            event = inbox.popleft()
            self._feed(run, event, stamp=not event.at)

    def _feed(self, run: TestRun, event: Event, *, stamp: bool = True) -> None:
        if stamp:
            event = msgspec.structs.replace(event, at=self.clock.now)
        run.history.append(event)
        self._apply(run, run.interpreter.feed([event]))

    def _apply(self, run: TestRun, decision: Decision) -> None:
        run.decision = decision
        for cancel in decision.cancel_children:
            self._do(run, run.planner.cancel_child(cancel, self.clock.now))
        if decision.cancelled:
            for step in decision.cancelled:
                run.step.drop_step(step)
            gone = set(decision.cancelled)
            run.todo = deque(sc for sc in run.todo if sc.step not in gone)
            run.activities = deque(sc for sc in run.activities if sc.step not in gone)
        run.todo.extend(decision.commands)

    # -- effects ------------------------------------------------------------------------------

    def _drain(self, run: TestRun) -> None:
        while run.todo:
            sc = run.todo.popleft()
            if run.interpreter.is_outstanding(sc.step, sc.command):
                for effect in run.planner.plan(sc, self.clock.now):
                    self._do(run, effect)

    def _plan_marker(self, run: TestRun) -> None:
        """Decide an undecided ``Patched``/``DeprecatePatch`` now (see
        ``Interpreter.undecided_marker``)."""
        sc = run.interpreter.undecided_marker()
        if sc is not None:
            for effect in run.planner.plan(sc, self.clock.now):
                self._do(run, effect)

    def _do(self, run: TestRun, effect: Effect) -> None:
        """Write one effect into the step (the one place the test environment applies effects)."""
        step = run.step
        match effect:
            case RunActivity(scheduled=scheduled):
                run.activities.append(scheduled)
            case SetTimer():
                step.timers.append(effect)
            case RegisterWait():
                step.waits.append(effect)
            case Record(event=event):
                self._feed(run, event)
            case SkipMarker(step=marker_step):
                self._apply(run, run.interpreter.skip_marker(marker_step))
            case Send():
                step.sends.append(effect)
            case Subscription():
                step.subscriptions.append(effect)
            case CreateChild():
                step.children.append(effect)
            case CancelChild():
                step.cancels.append(effect)
            case Finish():
                step.finish = effect
            case _:
                raise ReplayKitError(f"the test environment cannot apply {effect!r}")

    def _next_activity(self, run: TestRun) -> ScheduledCommand | None:
        while run.activities:
            sc = run.activities.popleft()
            if run.interpreter.is_outstanding(sc.step):
                return sc
        return None

    # -- commits ------------------------------------------------------------------------------

    def _commit(self, run: TestRun) -> bool:
        """Commit the step; True when the run is done for now (it waits, or it ended)."""
        self._drain(run)
        step, now = run.step, self.clock.now
        if run.interpreter.finished:
            self._do(run, run.finish(now))
        else:
            step.status = "running" if run.activities else "waiting"
        for child in step.children:
            self._child_run(run, child)
        released = self.store.commit(run.instance_id, step, now)
        run.step = MemoryStep()
        if step.finish is not None and step.finish.next_run is not None:
            run.recur()
        if released:
            return True
        if step.status == "waiting":
            self._take_inbox(run)
        return False

    def _child_run(self, parent: TestRun, child: CreateChild) -> None:
        if child.child_id in self.runs:
            return
        wf = self.registry.workflow(child.workflow)
        self.runs[child.child_id] = TestRun(
            parent.env,
            wf,
            child.child_id,
            parent_id=parent.instance_id,
            parent_step=child.parent_step,
        )

    # -- activities ---------------------------------------------------------------------------

    def _run_activity(self, run: TestRun, scheduled: ScheduledCommand) -> bool:
        """Run one activity and feed its outcome; True when it succeeded (then commit)."""
        command = scheduled.command
        original = command.original_result if isinstance(command, Compensate) else None
        ctx = TestActivityContext(
            run.instance_id, scheduled.step, scheduled.attempt, self.outbox, compensating=original
        )
        try:
            result = self._call(run, call_of(scheduled), ctx)
        except Exception as exc:
            self._feed(run, activity_outcome(scheduled, error=exc))
            return False
        self._feed(run, activity_outcome(scheduled, result=result))
        return True

    def _call(self, run: TestRun, call: ActivityCall[Any], ctx: TestActivityContext) -> Any:
        fake = self.fakes.get(call.name)
        definition = call.definition or self.registry.activities.get(call.name)
        fn = fake or (definition.fn if definition else None)
        if fn is None:
            raise UnknownWorkflow(f"no activity named {call.name!r} is registered")
        takes_ctx = True if fake is not None else bool(definition and definition.takes_ctx)
        run.activity_calls.append((call.name, call.args, call.kwargs))
        args = (ctx, *call.args) if takes_ctx else call.args
        result = run_bounded(  # a coroutine runs on a fresh loop, closed again
            lambda: fn(*args, **call.kwargs),
            call.timeout,
            ctx,
            call.name,
            is_async=inspect.iscoroutinefunction(fn),
            clock=self.clock,
        )
        return to_builtins(result, what=f"result of activity {call.name!r}")


__all__ = ["MemoryExecutor", "SeededValues"]

"""An in-memory runtime with a virtual clock: it executes the commands of its runs at once
(activities, fakes, effects, children) and fires their timers when virtual time reaches them.
"""

from __future__ import annotations

import asyncio
import heapq
import random as _random
import uuid as _uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from ..core.codec import to_builtins
from ..core.commands import (
    ActivityCall,
    Compensate,
    Now,
    Publish,
    Random,
    Receive,
    RetryTimer,
    SendTo,
    SideEffect,
    Sleep,
    SleepUntil,
    StartChild,
    Subscribe,
    Unsubscribe,
    Uuid,
    WaitEvent,
)
from ..core.decisions import ScheduledCommand
from ..core.definitions import Registry, Workflow, default_registry
from ..core.errors import InvalidInput
from ..core.history import (
    ChildCompleted,
    ChildFailed,
    EffectApplied,
    Event,
    EventTimedOut,
    Message,
    ReceiveTimedOut,
    RetryTimerFired,
    TimerFired,
    ValueRecorded,
    WorkflowStarted,
)
from ..core.interpreter import Interpreter
from ..core.outcomes import activity_outcome, call_of
from .activity import OutboxRecorder, TestActivityContext
from .clock import DEFAULT_START, VirtualClock
from .run import TestRun, event_for


class WorkflowEnvironment:
    """An in-memory runtime with a virtual clock for tests.

    ``activities`` maps activity names to fakes (called like the real one, with ``ctx`` first);
    activities without a fake run for real.
    """

    def __init__(
        self,
        *,
        activities: dict[str, Callable[..., Any]] | None = None,
        registry: Registry | None = None,
        start_time: float = DEFAULT_START,
        seed: int = 0,
    ) -> None:
        self.registry = registry or default_registry
        self.fakes = dict(activities or {})
        self.clock = VirtualClock(start_time)
        self.random = _random.Random(seed)
        self.runs: dict[str, TestRun] = {}
        self.outbox = OutboxRecorder()
        self.published: list[Message] = []
        self.message_seq = 0
        self._queue: deque[tuple[TestRun, Event]] = deque()
        self._timers: list[tuple[float, int, str, int, Event]] = []
        self._timer_seq = 0
        self._draining = False

    # -- starting -------------------------------------------------------------------------------

    def start(
        self,
        wf: Workflow[Any, Any],
        input: Any = None,
        *,
        instance_id: str | None = None,
        _parent: tuple[TestRun, int] | None = None,
        _run: int = 1,
        _continued_from: str | None = None,
    ) -> TestRun:
        """Start ``wf`` with ``input`` and run it until it waits or ends."""
        raw = wf.encode_input(input) if wf.takes_input else None
        instance_id = instance_id or f"{wf.name}-{len(self.runs) + 1}"
        if instance_id in self.runs and _run == 1:
            return self.runs[instance_id]
        run = TestRun(self, wf, instance_id, _parent)
        self.runs[instance_id] = run
        started = WorkflowStarted(
            workflow=wf.name,
            instance_id=instance_id,
            input=raw,
            run=_run,
            continued_from=_continued_from,
            parent_id=_parent[0].instance_id if _parent else None,
        )
        self.enqueue(run, started)
        self.run_until_idle()
        return run

    def run(self, wf: Workflow[Any, Any], input: Any = None, **kwargs: Any) -> Any:
        """Start ``wf`` and return its decoded result (virtual time runs as needed)."""
        return self.start(wf, input, **kwargs).result()

    def resume(self, wf: Workflow[Any, Any], history: list[Event]) -> TestRun:
        """Rebuild an instance from recorded ``history`` (as after a crash) and continue it."""
        first = history[0]
        assert isinstance(first, WorkflowStarted)
        run = TestRun(self, wf, first.instance_id, None)
        self.runs[first.instance_id] = run
        run.history = list(history)
        issued = _issue_times(wf, history, self.registry)
        decision = run.interpreter.feed(history, replaying=True)
        self.clock.now = max(self.clock.now, history[-1].at)
        run._apply(msgspec.structs.replace(decision, commands=()))
        for scheduled in run.interpreter.outstanding():
            # Durable timers keep their original deadlines: re-issue each command at the time
            # it was first issued (timers then fire when due, as after a real crash).
            now, self.clock.now = self.clock.now, issued.get(scheduled.step, self.clock.now)
            try:
                self.execute(run, scheduled)
            finally:
                self.clock.now = now
        self.run_until_idle()
        return run

    # -- the loop ---------------------------------------------------------------------------------

    def enqueue(self, run: TestRun, event: Event) -> None:
        self._queue.append((run, event))

    def run_until_idle(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            while self._queue:
                run, event = self._queue.popleft()
                run.feed(event)
        finally:
            self._draining = False

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds``, firing every timer due on the way."""
        target = self.clock.now + seconds
        self.run_until_idle()
        while self.fire_next_timer(limit=target):
            pass
        self.clock.now = max(self.clock.now, target)

    def fire_next_timer(self, *, limit: float) -> bool:
        while self._timers:
            at, _, instance_id, step, event = self._timers[0]
            if at > limit:
                return False
            heapq.heappop(self._timers)
            run = self.runs[instance_id]
            timeout = isinstance(event, EventTimedOut | ReceiveTimedOut)
            if timeout and run.waits.pop(step, None) is None:
                continue
            self.clock.now = max(self.clock.now, at)
            self.enqueue(run, event)
            self.run_until_idle()
            return True
        return False

    def _add_timer(self, run: TestRun, step: int, at: float, event: Event) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (at, self._timer_seq, run.instance_id, step, event))

    def cancel_timers(self, run: TestRun, step: int) -> None:
        self._timers = [t for t in self._timers if not (t[2] == run.instance_id and t[3] == step)]
        heapq.heapify(self._timers)

    # -- executing commands -----------------------------------------------------------------------

    def execute(self, run: TestRun, scheduled: ScheduledCommand) -> None:
        command, step = scheduled.command, scheduled.step
        now = self.clock.now
        match command:
            case ActivityCall() | Compensate():
                self.enqueue(run, self._run_activity(run, scheduled))
            case RetryTimer(seconds=seconds, attempt=attempt, name=name):
                event = RetryTimerFired(step=step, name=name, attempt=attempt)
                self._add_timer(run, step, now + seconds, event)
            case Sleep(seconds=seconds):
                self._add_timer(run, step, now + seconds, TimerFired(step=step))
            case SleepUntil():
                self._add_timer(run, step, command.at, TimerFired(step=step))
            case WaitEvent() | Receive():
                self._wait(run, step, command)
            case Now():
                self.enqueue(run, ValueRecorded(step=step, kind="Now", value=now))
            case Uuid():
                text = str(_uuid.UUID(int=self.random.getrandbits(128), version=4))
                self.enqueue(run, ValueRecorded(step=step, kind="Uuid", value=text))
            case Random():
                number = self.random.random()
                self.enqueue(run, ValueRecorded(step=step, kind="Random", value=number))
            case SideEffect(fn=fn, name=name):
                value = to_builtins(fn(), what=f"result of side effect {name!r}")
                self.enqueue(
                    run, ValueRecorded(step=step, name=name, kind="SideEffect", value=value)
                )
            case Publish() | SendTo() | Subscribe() | Unsubscribe():
                self._effect(run, command)  # records no value, as the runtime does
                _, name, _ = command.identity()
                kind = type(command).__name__
                self.enqueue(run, EffectApplied(step=step, name=name, kind=kind))
            case StartChild():
                self._start_child(run, step, command)
            case _:
                raise TypeError(f"testing environment cannot execute {command!r}")

    def _call(self, run: TestRun, call: ActivityCall[Any], ctx: TestActivityContext) -> Any:
        fake = self.fakes.get(call.name)
        definition = call.definition or self.registry.activities.get(call.name)
        fn = fake or (definition.fn if definition else None)
        if fn is None:
            raise InvalidInput(f"activity {call.name!r} is not registered and has no fake")
        takes_ctx = True if fake is not None else bool(definition and definition.takes_ctx)
        run.activity_calls.append((call.name, call.args, call.kwargs))
        args = (ctx, *call.args) if takes_ctx else call.args
        result = fn(*args, **call.kwargs)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)  # a fresh loop, closed again (no unclosed-loop warning)
        return to_builtins(result, what=f"result of activity {call.name!r}")

    def _run_activity(self, run: TestRun, scheduled: ScheduledCommand) -> Event:
        command = scheduled.command
        original = command.original_result if isinstance(command, Compensate) else None
        ctx = TestActivityContext(run, scheduled.step, scheduled.attempt, compensating=original)
        try:
            result = self._call(run, call_of(scheduled), ctx)
        except Exception as exc:
            return activity_outcome(scheduled, error=exc)
        return activity_outcome(scheduled, result=result)

    def _wait(self, run: TestRun, step: int, wait: WaitEvent | Receive) -> None:
        got = run._take_for(wait)
        if got is not None:
            self.enqueue(run, event_for(step, wait, got))
            return
        run.waits[step] = wait
        if wait.timeout is not None:
            timeout: Event
            if isinstance(wait, WaitEvent):
                timeout = EventTimedOut(step=step, name=wait.type)
            else:
                timeout = ReceiveTimedOut(step=step, name=wait.channel)
            self._add_timer(run, step, self.clock.now + wait.timeout, timeout)

    def _effect(self, run: TestRun, command: Any) -> None:
        if isinstance(command, Subscribe):
            run.subscriptions[command.channel] = command.mode
            return
        if isinstance(command, Unsubscribe):
            run.subscriptions.pop(command.channel, None)
            return
        self.message_seq += 1
        message = Message(
            channel=command.channel,
            data=to_builtins(command.data),
            metadata=dict(command.metadata),
            id=self.message_seq,
            sender=run.instance_id,
        )
        if isinstance(command, SendTo):
            target = self.runs.get(command.instance_id)
            if target is not None:
                target.inbox_messages.setdefault(command.channel, deque()).append(message)
                target._deliver_waiting()
            return
        self.published.append(message)
        subscribers = [r for r in self.runs.values() if command.channel in r.subscriptions]
        if any(r.subscriptions[command.channel] == "competing" for r in subscribers):
            subscribers = subscribers[message.id % len(subscribers) :][:1]
        for target in subscribers:
            target.inbox_messages.setdefault(command.channel, deque()).append(message)
            target._deliver_waiting()

    def _start_child(self, run: TestRun, step: int, command: StartChild[Any]) -> None:
        wf = self.registry.workflow(command.workflow)
        child_id = command.instance_id or f"{run.instance_id}/{step}"
        parent = (run, step) if command.wait else None
        self.start(wf, command.input, instance_id=child_id, _parent=parent)
        if not command.wait:
            event = EffectApplied(
                step=step, name=command.workflow, kind="StartChild", value=child_id
            )
            self.enqueue(run, event)

    def child_finished(self, child: TestRun) -> None:
        assert child.parent is not None
        parent, step = child.parent
        d = child.decision
        name = child.workflow.name
        if d.status == "completed":
            event: Event = ChildCompleted(
                step=step, name=name, child_id=child.instance_id, result=d.result
            )
        else:
            assert d.error is not None
            event = ChildFailed(step=step, name=name, child_id=child.instance_id, error=d.error)
        self.enqueue(parent, event)


def _issue_times(
    wf: Workflow[Any, Any], history: list[Event], registry: Registry
) -> dict[int, float]:
    """When each step's latest command was issued: the ``at`` of the event that issued it."""
    shadow = Interpreter(wf, instance_id=getattr(history[0], "instance_id", ""), registry=registry)
    issued: dict[int, float] = {}
    for event in history:
        for scheduled in shadow.feed([event]).commands:
            issued[scheduled.step] = event.at
    return issued


__all__ = ["WorkflowEnvironment"]

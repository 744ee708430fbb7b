"""Run workflows in memory with a virtual clock: no database, no threads, microseconds per run.

>>> env = WorkflowEnvironment(activities={"charge": lambda ctx, order_id, amount: {"ok": True}})
>>> run = env.start(order, OrderInput(id="o1", sku="book", qty=1, amount=20.0))
>>> run.run_until_idle()                   # runs until it waits (here: for an event)
>>> run.send_event("payment.completed", {"order": "o1"})
>>> run.result()                           # sleeps of days pass at once on the virtual clock
>>> run.history                            # the recorded history events

``replay_check(workflow, history)`` replays a stored history against the current code and reports
non-determinism before a deploy.
"""

from __future__ import annotations

import asyncio
import heapq
import random as _random
import uuid as _uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from .core.codec import to_builtins
from .core.commands import (
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
from .core.decisions import Decision, ScheduledCommand
from .core.definitions import Registry, Workflow, default_registry
from .core.errors import (
    InvalidInput,
    NonDeterminismError,
    ReplayKitError,
    WorkflowFailed,
)
from .core.history import (
    CancelRequested,
    ChildCompleted,
    ChildFailed,
    EffectApplied,
    Event,
    EventData,
    EventReceived,
    EventTimedOut,
    Message,
    MessageReceived,
    ReceiveTimedOut,
    RetryTimerFired,
    TimerFired,
    ValueRecorded,
    WorkflowStarted,
)
from .core.interpreter import Interpreter, raise_as
from .core.outcomes import activity_outcome, call_of

DEFAULT_START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class WorkflowStuck(ReplayKitError):
    """The workflow waits for something that will never come in this test (an event, a message)."""


class VirtualClock:
    """Time that only moves when the environment advances it."""

    def __init__(self, start: float = DEFAULT_START) -> None:
        self.now = start

    def time(self) -> float:
        return self.now


class TestActivityContext:
    """The ``ctx`` an activity gets in tests: no session; outbox events are collected in a list."""

    __test__ = False

    def __init__(self, run: TestRun, step: int, attempt: int, compensating: Any = None) -> None:
        self.instance_id = run.instance_id
        self.step = step
        self.attempt = attempt
        self.compensating_result = compensating
        self.session: Any = None
        self.outbox = run.env.outbox
        self.heartbeats = 0

    def heartbeat(self) -> None:
        self.heartbeats += 1


class OutboxRecorder:
    """Collects what activities send through ``ctx.outbox`` in tests."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, event: Any, **_: Any) -> None:
        self.sent.append(event)


class TestRun:
    """One workflow instance inside a :class:`WorkflowEnvironment`."""

    __test__ = False

    def __init__(
        self, env: WorkflowEnvironment, wf: Workflow[Any, Any], instance_id: str, parent: Any
    ) -> None:
        self.env = env
        self.workflow = wf
        self.instance_id = instance_id
        self.parent: tuple[TestRun, int] | None = parent
        self.history: list[Event] = []
        self.archived: list[list[Event]] = []  # histories of earlier runs (ended with Recur)
        self.interpreter = Interpreter(wf, instance_id=instance_id, registry=env.registry)
        self.decision = Decision()
        self.waits: dict[int, WaitEvent | Receive] = {}
        self.inbox_events: list[EventData] = []
        self.inbox_messages: dict[str, deque[Message]] = {}
        self.subscriptions: dict[str, str] = {}
        self.activity_calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    # -- status -----------------------------------------------------------------------------

    @property
    def status(self) -> str:
        return self.decision.status

    @property
    def finished(self) -> bool:
        return self.decision.finished

    def run_until_idle(self) -> TestRun:
        """Execute everything that can run now; timers fire only when due."""
        self.env.run_until_idle()
        return self

    def advance(self, seconds: float) -> TestRun:
        """Move the virtual clock forward, firing due timers."""
        self.env.advance(seconds)
        return self

    def run_to_completion(self, *, max_seconds: float = 10 * 365 * 86400.0) -> TestRun:
        """Run, jumping the clock from timer to timer, until this instance ends."""
        self.env.run_until_idle()
        while not self.finished:
            if not self.env.fire_next_timer(limit=self.env.clock.now + max_seconds):
                waits = ", ".join(w.describe() for w in self.waits.values()) or "nothing"
                raise WorkflowStuck(
                    f"instance {self.instance_id!r} waits for {waits} and no timer is due; "
                    "send it with run.send_event(...) / run.send_message(...)"
                )
        return self

    def result(self) -> Any:
        """Run to completion and return the decoded result (raise the failure otherwise)."""
        self.run_to_completion()
        d = self.decision
        if d.status == "completed":
            return self.workflow.decode_result(d.result)
        if d.status == "continued":
            return d.recur_input
        err = d.error
        raise WorkflowFailed(
            f"instance {self.instance_id!r} {d.status}: "
            f"{err.type if err else ''}: {err.message if err else ''}",
            instance_id=self.instance_id,
            type_name=err.type if err else "",
            status=d.status,
        )

    # -- input from outside -----------------------------------------------------------------

    def send_event(self, type: str, data: Any = None, **attrs: Any) -> TestRun:
        """Deliver an event to this instance (kept until a matching WaitEvent takes it)."""
        event = EventData(type=type, data=to_builtins(data), id=str(len(self.history)), **attrs)
        self.inbox_events.append(event)
        self._deliver_waiting()
        self.env.run_until_idle()
        return self

    def send_message(
        self, channel: str, data: Any = None, metadata: dict[str, str] | None = None
    ) -> TestRun:
        """Deliver a channel message straight to this instance."""
        self.env.message_seq += 1
        message = Message(
            channel=channel,
            data=to_builtins(data),
            metadata=metadata or {},
            id=self.env.message_seq,
        )
        self.inbox_messages.setdefault(channel, deque()).append(message)
        self._deliver_waiting()
        self.env.run_until_idle()
        return self

    def cancel(self, reason: str = "") -> TestRun:
        """Ask the instance to cancel; compensations run."""
        self.env.enqueue(self, CancelRequested(reason=reason))
        self.env.run_until_idle()
        return self

    # -- internals ----------------------------------------------------------------------------

    def feed(self, event: Event) -> None:
        event = msgspec.structs.replace(event, at=self.env.clock.now)
        self.history.append(event)
        decision = self.interpreter.feed([event])
        self._apply(decision)

    def _apply(self, decision: Decision) -> None:
        self.decision = decision
        for step in decision.cancelled:
            self.waits.pop(step, None)
            self.env.cancel_timers(self, step)
        for scheduled in decision.commands:
            self.env.execute(self, scheduled)
        if decision.status == "continued":
            self._continue_as_new(decision.recur_input)
        elif decision.finished and self.parent is not None:
            self.env.child_finished(self)

    def _continue_as_new(self, new_input: Any) -> None:
        """Archive this run's history and start the next run of the same instance (Recur)."""
        self.archived.append(self.history)
        self.history = []
        self.waits.clear()
        self.interpreter = Interpreter(
            self.workflow, instance_id=self.instance_id, registry=self.env.registry
        )
        started = WorkflowStarted(
            workflow=self.workflow.name,
            instance_id=self.instance_id,
            input=new_input,
            run=len(self.archived) + 1,
            continued_from=self.instance_id,
            parent_id=self.parent[0].instance_id if self.parent else None,
        )
        self.env.enqueue(self, started)

    def _deliver_waiting(self) -> None:
        for step, wait in sorted(self.waits.items()):
            event = self._take_for(wait)
            if event is not None:
                del self.waits[step]
                self.env.cancel_timers(self, step)
                self.env.enqueue(self, event_for(step, wait, event))

    def _take_for(self, wait: WaitEvent | Receive) -> EventData | Message | None:
        if isinstance(wait, WaitEvent):
            for i, ev in enumerate(self.inbox_events):
                if ev.type == wait.type and _matches(ev.data, wait.match):
                    return self.inbox_events.pop(i)
            return None
        queue = self.inbox_messages.get(wait.channel)
        return queue.popleft() if queue else None


def _matches(data: Any, match: dict[str, Any] | None) -> bool:
    if not match:
        return True
    return isinstance(data, dict) and all(data.get(k) == v for k, v in match.items())


def event_for(step: int, wait: WaitEvent | Receive, got: EventData | Message) -> Event:
    if isinstance(wait, WaitEvent):
        assert isinstance(got, EventData)
        return EventReceived(step=step, name=wait.type, event=got)
    assert isinstance(got, Message)
    return MessageReceived(step=step, name=wait.channel, message=got)


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
                value = self._effect(run, command)
                _, name, _ = command.identity()
                kind = type(command).__name__
                self.enqueue(run, EffectApplied(step=step, name=name, kind=kind, value=value))
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

    def _effect(self, run: TestRun, command: Any) -> Any:
        if isinstance(command, Subscribe):
            run.subscriptions[command.channel] = command.mode
            return None
        if isinstance(command, Unsubscribe):
            run.subscriptions.pop(command.channel, None)
            return None
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
            return message.id
        self.published.append(message)
        subscribers = [r for r in self.runs.values() if command.channel in r.subscriptions]
        if any(r.subscriptions[command.channel] == "competing" for r in subscribers):
            subscribers = subscribers[message.id % len(subscribers) :][:1]
        for target in subscribers:
            target.inbox_messages.setdefault(command.channel, deque()).append(message)
            target._deliver_waiting()
        return message.id

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


class ReplayCheck(msgspec.Struct, kw_only=True):
    """The outcome of :func:`replay_check`."""

    ok: bool
    instance_id: str
    events: int
    status: str
    error: str = ""
    step: int = 0

    def raise_if_failed(self) -> None:
        if not self.ok:
            raise NonDeterminismError(self.error, instance_id=self.instance_id, step=self.step)


def replay_check(
    wf: Workflow[Any, Any], history: Iterable[Event], *, registry: Registry | None = None
) -> ReplayCheck:
    """Replay stored ``history`` against the current code of ``wf``; report non-determinism.

    >>> report = replay_check(order, stored_history)
    >>> report.ok, report.error
    """
    events = list(history)
    first = events[0] if events else None
    instance_id = first.instance_id if isinstance(first, WorkflowStarted) else ""
    interp = Interpreter(wf, instance_id=instance_id, registry=registry)
    try:
        decision = interp.feed(events, replaying=True)
    except NonDeterminismError as exc:
        return ReplayCheck(
            ok=False,
            instance_id=instance_id,
            events=interp.events_applied,
            status="broken",
            error=str(exc),
            step=exc.step,
        )
    return ReplayCheck(ok=True, instance_id=instance_id, events=len(events), status=decision.status)


__all__ = [
    "OutboxRecorder",
    "ReplayCheck",
    "TestActivityContext",
    "TestRun",
    "VirtualClock",
    "WorkflowEnvironment",
    "WorkflowStuck",
    "raise_as",
    "replay_check",
]

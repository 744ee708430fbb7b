"""What every command does, decided once: the planner turns a scheduled command into *effects*.

The interpreter says *which* commands a workflow issued; this module says what each one *means*.
A :class:`Planner` turns a :class:`~replaykit.core.decisions.ScheduledCommand` (with ``now``, the
instance id and what only the shell can supply, see :class:`Values` and :class:`Stored`) into a
short tuple of effects, and the end of a run into one :class:`Finish`. The production executor
(``replaykit.runtime.executor``) and the in-memory test environment (``replaykit.testing``) each
hold one ``match`` over effects that writes to their own store and decide nothing else::

    for effect in planner.plan(scheduled, now):
        match effect:
            case SetTimer(step=step, fire_at=at, event=event, is_timeout=timeout): ...
            case Record(event=event): ...        # feed it to the interpreter, append to history

Effects are frozen, tagged msgspec Structs; they are instructions for the shell, not history
(nothing here is ever stored as is). A new command type adds one planning function to
``_PLANS`` below, and a new *kind* of effect one case to each of the two matches.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, cast

import msgspec

from .codec import to_builtins
from .commands import (
    ActivityCall,
    ChannelMode,
    Command,
    Compensate,
    DeprecatePatch,
    Now,
    Patched,
    PatchMarker,
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
from .decisions import ChildCancel, ScheduledCommand
from .definitions import Registry
from .errors import InvalidCommand, InvalidInput, UnknownWorkflow
from .failures import error_info
from .history import (
    CancelRequested,
    ChildCompleted,
    ChildFailed,
    EffectApplied,
    ErrorInfo,
    Event,
    EventTimedOut,
    ReceiveTimedOut,
    RetryTimerFired,
    TimerFired,
    ValueRecorded,
    WorkflowStarted,
)
from .matching import PATCH_MARKER
from .validation import check_id

# -- effects ------------------------------------------------------------------------------------


class Effect(msgspec.Struct, frozen=True, kw_only=True, tag=True, tag_field="effect"):
    """Base of every effect."""


class RunActivity(Effect, frozen=True):
    """Run the activity (or compensation) of ``scheduled``; its outcome is the next event."""

    scheduled: ScheduledCommand


class SetTimer(Effect, frozen=True):
    """At ``fire_at``, deliver ``event``. A timeout (``is_timeout``) belongs to the wait at the
    same step: it fires only while that wait exists, and goes when the wait is satisfied."""

    step: int
    fire_at: float
    event: Event
    is_timeout: bool = False


class RegisterWait(Effect, frozen=True):
    """Wait at ``step`` for an event of type ``key`` fitting ``match`` (``kind="event"``) or a
    message on channel ``key`` (``kind="message"``); something already available is taken now."""

    step: int
    kind: Literal["event", "message"]
    key: str
    match: dict[str, Any] | None = None


class Record(Effect, frozen=True):
    """Append ``event`` to history now and feed it to the interpreter (recorded values, applied
    fire-and-forget commands, a child that cannot start)."""

    event: Event


class SkipMarker(Effect, frozen=True):
    """Record nothing: tell the interpreter that history has no patch marker at ``step`` (a
    ``Patched`` not taken, a ``DeprecatePatch``); it gives the step back and goes on
    (``Interpreter.skip_marker``)."""

    step: int


class Send(Effect, frozen=True):
    """Store a channel message from this instance: published (``target=None``) or sent to one
    instance. ``data`` is JSON builtins."""

    channel: str
    data: Any = None
    metadata: dict[str, str] = {}
    target: str | None = None


class Subscription(Effect, frozen=True):
    """Subscribe this instance to ``channel`` in ``mode``, or unsubscribe (``subscribe=False``)."""

    channel: str
    mode: ChannelMode = "broadcast"
    subscribe: bool = True


class CreateChild(Effect, frozen=True):
    """Create the child instance ``child_id`` (none if the id exists) with ``started`` as its first
    event; ``parent_step`` is the step its end is told to (the parent waits for its result, or
    for its end with ``parent_close="wait"``; None: fire and forget).
    ``deadline``: the child's deadline timer, stored with the child (see :func:`deadline_timer`)."""

    child_id: str
    workflow: str
    started: WorkflowStarted
    input: Any = None
    parent_step: int | None = None
    deadline: SetTimer | None = None


class CancelChild(Effect, frozen=True):
    """Cancel ``child_id``, a child of this instance, if it still runs: ``event`` (a
    ``CancelRequested``) goes to its inbox (its parent-close policy is ``cancel``)."""

    child_id: str
    event: CancelRequested


class Finish(Effect, frozen=True):
    """The run ended with ``status`` (``result``/``error``). ``parent_event`` goes to a waiting
    parent's inbox; ``next_run`` (``status="continued"``) is the first event of the next run."""

    status: str
    result: Any = None
    error: ErrorInfo | None = None
    parent_event: ChildCompleted | ChildFailed | None = None
    next_run: WorkflowStarted | None = None


#: the step of an instance's deadline timer (commands are numbered from 1)
DEADLINE_STEP = 0


def deadline_timer(deadline: float) -> SetTimer:
    """The durable timer of an instance that must end by ``deadline``: stored with the instance
    when it is created, at :data:`DEADLINE_STEP`, and kept across ``Recur``. When it fires, the
    instance is cancelled with ``WorkflowTimedOut``."""
    when = datetime.fromtimestamp(deadline, UTC).isoformat(timespec="milliseconds")
    event = CancelRequested(reason=f"its deadline ({when}) passed", timed_out=True)
    return SetTimer(step=DEADLINE_STEP, fire_at=deadline, event=event)


def admitted_start(
    started: WorkflowStarted, timeout: float, now: float
) -> tuple[WorkflowStarted, SetTimer]:
    """A start on a queue with ``timeout`` seconds, admitted at ``now``: its deadline clock
    starts then (waiting in the queue does not count). Its first event, now with the deadline
    (the instance has not run: nothing read it yet), and the deadline's timer."""
    deadline = now + timeout
    return msgspec.structs.replace(started, deadline=deadline), deadline_timer(deadline)


# -- what only the shell can supply -----------------------------------------------------------


class Values(Protocol):
    """Values that vary between runs, supplied by the shell (the core has no randomness and runs
    no side effects itself): real ones in production, seeded ones in tests."""

    def uuid(self) -> str:
        """A random UUID4 string."""
        ...

    def random(self) -> float:
        """A random float in [0, 1)."""
        ...

    def side_effect(self, fn: Callable[[], Any]) -> Any:
        """The result of calling ``fn()`` once."""
        ...


class Stored(Protocol):
    """What the store holds for one instance that its history does not show."""

    def registered_from(self, step: int) -> bool:
        """Whether a timer, a wait or a running child whose result the instance waits for is
        stored for it at ``step`` or later: code that ran before this replay issued something
        there that has no outcome yet (only possible at the end of a replayed history)."""
        ...


class NothingStored:
    """:class:`Stored` for an instance whose store holds nothing beyond its history."""

    def registered_from(self, step: int) -> bool:
        return False


class Ending(Protocol):
    """How a run ended (a :class:`~replaykit.core.decisions.Decision` or an ``Interpreter``)."""

    @property
    def status(self) -> str: ...

    @property
    def result(self) -> Any: ...

    @property
    def error(self) -> ErrorInfo | None: ...

    @property
    def recur_input(self) -> Any: ...


# -- the planner --------------------------------------------------------------------------------

Plan = tuple[Effect, ...]


class Planner:
    """Plans the effects of one instance's commands (see the module docstring)."""

    __slots__ = ("instance_id", "registry", "run", "stored", "values", "workflow")

    def __init__(
        self,
        workflow: str,
        instance_id: str,
        registry: Registry,
        values: Values,
        stored: Stored | None = None,
        *,
        run: int = 1,
    ) -> None:
        self.workflow = workflow
        self.instance_id = instance_id
        self.registry = registry
        self.values = values
        self.stored: Stored = stored or NothingStored()
        #: the run being planned (1, then one more after each ``Recur``)
        self.run = run

    def child_id(self, step: int) -> str:
        """The default id of the child started at ``step``: ``"<parent>/<step>"`` in run 1 and
        ``"<parent>@<run>/<step>"`` in later runs (a run that recurred starts its steps at 1
        again, so the run keeps its children's ids apart from those of earlier runs)."""
        if self.run == 1:
            return f"{self.instance_id}/{step}"
        return f"{self.instance_id}@{self.run}/{step}"

    def plan(self, scheduled: ScheduledCommand, now: float) -> Plan:
        """The effects of executing ``scheduled`` at ``now``, in the order to apply them."""
        planner = _PLANS.get(type(scheduled.command))
        if planner is None:
            raise InvalidCommand(f"no runtime executes {scheduled.command!r}")
        return planner(self, scheduled, now)

    def cancel_child(self, cancel: ChildCancel, now: float) -> CancelChild:
        """The effect of a child to cancel (see ``Decision.cancel_children``)."""
        command = cast("StartChild[Any]", cancel.command)
        child_id = command.instance_id or self.child_id(cancel.step)
        return CancelChild(child_id=child_id, event=CancelRequested(reason=cancel.reason, at=now))

    def finish(
        self,
        ending: Ending,
        now: float,
        *,
        parent_id: str | None = None,
        parent_step: int | None = None,
        deadline: float | None = None,
    ) -> Finish:
        """The end of the run: what the parent waiting at ``parent_step`` is told, or the next
        run's first event when the workflow recurred (the instance's ``deadline`` goes on)."""
        status, run = ending.status, self.run
        if status == "continued":
            next_run = WorkflowStarted(
                workflow=self.workflow,
                instance_id=self.instance_id,
                input=ending.recur_input,
                run=run + 1,
                continued_from=f"{self.instance_id}@{run}",
                parent_id=parent_id,
                deadline=deadline,
                at=now,
            )
            return Finish(status=status, next_run=next_run)
        parent_event: ChildCompleted | ChildFailed | None = None
        if parent_id is not None and parent_step is not None:
            name, child_id = self.workflow, self.instance_id
            if status == "completed":
                parent_event = ChildCompleted(
                    step=parent_step, name=name, child_id=child_id, result=ending.result, at=now
                )
            else:
                assert ending.error is not None
                parent_event = ChildFailed(
                    step=parent_step, name=name, child_id=child_id, error=ending.error, at=now
                )
        return Finish(
            status=status, result=ending.result, error=ending.error, parent_event=parent_event
        )


# -- one planning function per command type -------------------------------------------------------


def _activity(p: Planner, sc: ScheduledCommand, now: float) -> Plan:
    return (RunActivity(scheduled=sc),)


def _retry_timer(p: Planner, sc: ScheduledCommand, now: float) -> Plan:
    c = cast("RetryTimer", sc.command)
    fired = RetryTimerFired(step=sc.step, name=c.name, attempt=c.attempt)
    return (SetTimer(step=sc.step, fire_at=now + c.seconds, event=fired),)


def _sleep(p: Planner, sc: ScheduledCommand, now: float) -> Plan:
    c = cast("Sleep | SleepUntil", sc.command)
    at = c.at if isinstance(c, SleepUntil) else now + c.seconds
    return (SetTimer(step=sc.step, fire_at=at, event=TimerFired(step=sc.step)),)


def _wait(p: Planner, sc: ScheduledCommand, now: float) -> Plan:
    c = cast("WaitEvent | Receive", sc.command)
    step = sc.step
    timed_out: Event
    if isinstance(c, WaitEvent):
        match = None if c.match is None else to_builtins(c.match, what="WaitEvent match")
        wait = RegisterWait(step=step, kind="event", key=c.type, match=match)
        timed_out = EventTimedOut(step=step, name=c.type)
    else:
        wait = RegisterWait(step=step, kind="message", key=c.channel)
        timed_out = ReceiveTimedOut(step=step, name=c.channel)
    if c.timeout is None:
        return (wait,)
    return (wait, SetTimer(step=step, fire_at=now + c.timeout, event=timed_out, is_timeout=True))


def _value(p: Planner, sc: ScheduledCommand, now: float) -> Plan:
    c = cast("Now | Uuid | Random | SideEffect", sc.command)
    kind, name = type(c).__name__, ""
    value: Any
    if isinstance(c, Now):
        value = now
    elif isinstance(c, Uuid):
        value = p.values.uuid()
    elif isinstance(c, Random):
        value = p.values.random()
    else:
        name = c.name
        value = to_builtins(p.values.side_effect(c.fn), what=f"result of side effect {name!r}")
    return (Record(event=ValueRecorded(step=sc.step, name=name, kind=kind, value=value)),)


def _patch(p: Planner, sc: ScheduledCommand, now: float) -> Plan:
    """A ``Patched`` or ``DeprecatePatch`` that history did not decide (it ends right after the
    yield). A ``Patched`` is taken, and its marker recorded, unless the code that ran before this
    replay had already issued something at this step or later that still waits for its outcome
    (a timer, an event or message wait, a child): then that code had no patch here. An activity
    leaves nothing stored, so one that never committed simply runs the new path."""
    c = cast("PatchMarker", sc.command)
    if isinstance(c, Patched) and not p.stored.registered_from(sc.step):
        marker = ValueRecorded(step=sc.step, name=c.id, kind=PATCH_MARKER, value=True)
        return (Record(event=marker),)
    return (SkipMarker(step=sc.step),)


def _applied(sc: ScheduledCommand, name: str, value: Any = None) -> Record:
    """The record of a fire-and-forget command (the workflow gets ``value``)."""
    kind = type(sc.command).__name__
    return Record(event=EffectApplied(step=sc.step, name=name, kind=kind, value=value))


def _send(p: Planner, sc: ScheduledCommand, now: float) -> Plan:
    c = cast("Publish | SendTo", sc.command)
    send = Send(
        channel=c.channel,
        data=to_builtins(c.data, what="message data"),
        metadata=dict(c.metadata),
        target=c.instance_id if isinstance(c, SendTo) else None,
    )
    return (send, _applied(sc, c.channel))


def _subscription(p: Planner, sc: ScheduledCommand, now: float) -> Plan:
    c = cast("Subscribe | Unsubscribe", sc.command)
    if isinstance(c, Subscribe):
        change = Subscription(channel=c.channel, mode=c.mode)
    else:
        change = Subscription(channel=c.channel, subscribe=False)
    return (change, _applied(sc, c.channel))


def _start_child(p: Planner, sc: ScheduledCommand, now: float) -> Plan:
    c = cast("StartChild[Any]", sc.command)
    step = sc.step
    child_id = c.instance_id or p.child_id(step)
    try:
        check_id(child_id, "child instance id")  # "<parent id>/<step>" may pass the limit
        child = p.registry.workflow(c.workflow)
        raw_input = child.encode_input(c.input)
    except (UnknownWorkflow, InvalidInput) as exc:
        error = error_info(exc, retryable=False)
        failed = ChildFailed(step=step, name=c.workflow, child_id=child_id, error=error)
        return (Record(event=failed),)
    deadline = None if c.timeout is None else now + c.timeout
    started = WorkflowStarted(
        workflow=child.name,
        instance_id=child_id,
        input=raw_input,
        parent_id=p.instance_id,
        deadline=deadline,
        at=now,
    )
    create = CreateChild(
        child_id=child_id,
        workflow=child.name,
        input=raw_input,
        started=started,
        parent_step=step if c.wait or c.parent_close == "wait" else None,
        deadline=None if deadline is None else deadline_timer(deadline),
    )
    if c.wait:
        return (create,)
    return (create, _applied(sc, c.workflow, child_id))


_PLANS: dict[type[Command], Callable[[Planner, ScheduledCommand, float], Plan]] = {
    ActivityCall: _activity,
    Compensate: _activity,
    RetryTimer: _retry_timer,
    Sleep: _sleep,
    SleepUntil: _sleep,
    WaitEvent: _wait,
    Receive: _wait,
    Now: _value,
    Uuid: _value,
    Random: _value,
    SideEffect: _value,
    Publish: _send,
    SendTo: _send,
    Subscribe: _subscription,
    Unsubscribe: _subscription,
    StartChild: _start_child,
    Patched: _patch,
    DeprecatePatch: _patch,
}

__all__ = [
    "DEADLINE_STEP",
    "CancelChild",
    "CreateChild",
    "Effect",
    "Ending",
    "Finish",
    "NothingStored",
    "Plan",
    "Planner",
    "Record",
    "RegisterWait",
    "RunActivity",
    "Send",
    "SetTimer",
    "SkipMarker",
    "Stored",
    "Subscription",
    "Values",
    "admitted_start",
    "deadline_timer",
]

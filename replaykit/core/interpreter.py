"""The pure interpreter: one workflow generator driven by history events (sans-I/O, like h11).

>>> interp = Interpreter(my_workflow, instance_id="order-1")
>>> decision = interp.feed([WorkflowStarted(workflow="my_workflow", instance_id="order-1")])
>>> decision.commands            # what the runtime must execute now
>>> decision = interp.feed([ActivityCompleted(step=1, name="charge", fp=..., result=...)])

Feeding a whole history at once is replay; feeding one new event is the fast path; both give the
same decisions. Every yielded command gets a step number when yielded; members of ``All``/``Any``
get their own numbers right after the group's, and retries never consume numbers, so later steps
never shift. Only a broken replay raises (:class:`NonDeterminismError`); the interpreter then stays
broken. A workflow's own failure is returned as data (``Decision(status="failed", error=...)``).
"""

from __future__ import annotations

import traceback as _traceback
from collections.abc import Callable, Generator, Iterable
from datetime import UTC, datetime
from typing import Any

from .codec import PLAIN_TYPES, convert, fingerprint, to_builtins
from .commands import (
    MEMBER_TYPES,
    ActivityCall,
    All,
    AnyOf,
    Command,
    Compensate,
    Now,
    Receive,
    Recur,
    RetryTimer,
    Sleep,
    SleepUntil,
    StartChild,
    WaitEvent,
)
from .context import WorkflowContext
from .decisions import Decision, ScheduledCommand, Status
from .definitions import Registry, Workflow, default_registry
from .errors import (
    ActivityError,
    ChildWorkflowError,
    EventTimeout,
    InvalidCommand,
    InvalidInput,
    NonDeterminismError,
    ReplayKitError,
    WorkflowCancelled,
)
from .history import (
    ActivityCompleted,
    ActivityFailed,
    CancelRequested,
    ChildCompleted,
    ChildFailed,
    CompensationCompleted,
    CompensationFailed,
    EffectApplied,
    ErrorInfo,
    Event,
    EventReceived,
    EventTimedOut,
    MessageReceived,
    ReceiveTimedOut,
    RetryTimerFired,
    StepEvent,
    TimerFired,
    ValueRecorded,
    WorkflowStarted,
)
from .matching import Location, fits, mismatch
from .retry import DEFAULT_RETRY, RetryPolicy

ErrorResolver = Callable[[str], type[BaseException] | None]
_ITER_CODES = frozenset(
    cls.__iter__.__code__ for cls in (Command, ActivityCall, StartChild, All, AnyOf)
)
_WAIT_TYPES = (Sleep, SleepUntil, WaitEvent, Receive, RetryTimer)


class _Pending:
    """A yielded command waiting for its outcome."""

    __slots__ = ("attempt", "command", "fp", "group", "location", "retry_delay", "step")

    def __init__(
        self, step: int, command: Command, group: int | None, location: Location | None, fp: str
    ) -> None:
        self.step = step
        self.command = command
        self.group = group
        self.location = location
        self.fp = fp
        self.attempt = 1
        self.retry_delay: float | None = None  # set while waiting on a retry timer


class _Group:
    __slots__ = ("command", "members", "outcomes", "step")

    def __init__(self, step: int, command: All | AnyOf, members: list[int]) -> None:
        self.step = step
        self.command = command
        self.members = members
        self.outcomes: dict[int, tuple[bool, Any]] = {}


def error_info(exc: BaseException, *, retryable: bool = True) -> ErrorInfo:
    """Describe ``exc`` as data (type name keeps the original class for ActivityErrors)."""
    cls = type(exc)
    type_name = getattr(exc, "type_name", None) if isinstance(exc, ActivityError) else None
    if not type_name:
        type_name = f"{cls.__module__}.{cls.__qualname__}"
    message = exc.message if isinstance(exc, ActivityError) else str(exc)
    tb = "".join(_traceback.format_exception(exc))
    return ErrorInfo(type=type_name, message=message, retryable=retryable, traceback=tb)


_combined: dict[tuple[type[BaseException], type[BaseException]], type[BaseException]] = {}


def raise_as(
    base: type[ActivityError], info: ErrorInfo, resolver: ErrorResolver, **fields: Any
) -> ActivityError:
    """An ``ActivityError`` (or subclass) that is *also* the original class, when resolvable."""
    cls = resolver(info.type)
    target: type[ActivityError] = base
    if cls is not None and not issubclass(base, cls):
        key = (base, cls)
        made = _combined.get(key)
        if made is None:
            try:
                made = type(cls.__name__, (base, cls), {"__module__": cls.__module__})
                made.__qualname__ = cls.__qualname__
            except TypeError:  # incompatible layouts: keep the plain ActivityError
                made = base
            _combined[key] = made
        target = made  # type: ignore[assignment]
    err = target.__new__(target)
    base.__init__(err, info.message, type_name=info.type, traceback=info.traceback, **fields)
    return err


class Interpreter:
    """Drives one workflow generator from history events; see the module docstring."""

    def __init__(
        self,
        workflow: Workflow[Any, Any],
        *,
        instance_id: str = "",
        registry: Registry | None = None,
        error_resolver: ErrorResolver | None = None,
    ) -> None:
        self.workflow = workflow
        self.instance_id = instance_id
        self.registry = registry or default_registry
        self.resolve_error: ErrorResolver = error_resolver or self.registry.resolve_error
        self.status: Status = "running"
        self.started = False
        self.replaying = False
        self.result: Any = None
        self.error: ErrorInfo | None = None
        self.recur_input: Any = None
        self.context: WorkflowContext | None = None
        self._gen: Generator[Command, Any, Any] | None = None
        self._next_step = 1
        self._pending: dict[int, _Pending] = {}
        self._groups: dict[int, _Group] = {}
        self._abandoned: dict[int, _Pending] = {}
        self._blocked_on: int | None = None
        self._compensations: list[tuple[int, ActivityCall[Any], Any]] = []
        self._compensating = False
        self._final_status: Status = "failed"
        self._out: dict[int, _Pending] = {}  # issued since the last decision (built lazily)
        self._cancelled: list[int] = []
        self._broken: NonDeterminismError | None = None
        self.events_applied = 0
        self._handlers: dict[type[Event], Callable[[Any], None]] = {
            WorkflowStarted: self._on_started,
            CancelRequested: self._on_cancel_requested,
            ActivityCompleted: self._on_activity_completed,
            ActivityFailed: self._on_activity_failed,
            RetryTimerFired: self._on_retry_timer_fired,
            TimerFired: self._on_timer_fired,
            EventReceived: self._on_event_received,
            EventTimedOut: self._on_event_timed_out,
            MessageReceived: self._on_message_received,
            ReceiveTimedOut: self._on_receive_timed_out,
            ChildCompleted: self._on_child_completed,
            ChildFailed: self._on_child_failed,
            ValueRecorded: self._on_value_recorded,
            EffectApplied: self._on_effect_applied,
            CompensationCompleted: self._on_compensation_completed,
            CompensationFailed: self._on_compensation_failed,
        }

    # ------------------------------------------------------------------ public API

    def feed(self, events: Iterable[Event], *, replaying: bool = False) -> Decision:
        """Apply ``events`` in order and return what to do next.

        With ``replaying=True`` the events are recorded history being replayed: ``ctx.is_replaying``
        is true until the last of them is applied.
        """
        if self._broken is not None:
            raise self._broken
        batch = events if isinstance(events, list | tuple) else list(events)
        last = len(batch) - 1
        try:
            for index, event in enumerate(batch):
                self.replaying = replaying and index < last
                handler = self._handlers.get(type(event))
                if handler is None:
                    raise InvalidCommand(f"not a history event: {event!r}")
                handler(event)
                self.events_applied += 1
        except NonDeterminismError as exc:
            self._broken = exc
            raise
        finally:
            self.replaying = False
        return self._take_decision()

    @property
    def finished(self) -> bool:
        return self.status != "running"

    def is_outstanding(self, step: int) -> bool:
        """Whether the command at ``step`` still waits for its outcome (not resolved/abandoned)."""
        return step in self._pending

    def outstanding(self) -> list[ScheduledCommand]:
        """Every command issued and not yet resolved (what a resumed runtime must see to)."""
        return [self._scheduled_for(p) for p in self._pending.values()]

    # ------------------------------------------------------------------ driving the generator

    def _take_decision(self) -> Decision:
        decision = Decision(
            commands=tuple(self._scheduled_for(p) for p in self._out.values()),
            cancelled=tuple(self._cancelled),
            status=self.status,
            result=self.result,
            error=self.error,
            recur_input=self.recur_input,
        )
        self._out = {}
        self._cancelled = []
        return decision

    def _advance(self, value: Any = None, error: BaseException | None = None) -> None:
        gen = self._gen
        assert gen is not None
        self._blocked_on = None
        while True:
            try:
                command = gen.send(value) if error is None else gen.throw(error)
            except StopIteration as stop:
                self._complete(stop.value)
                return
            except Exception as exc:
                self._fail(exc)
                return
            value, error = None, None
            immediate = self._on_yield(command, self._location())
            if immediate is None:
                return
            value, error = immediate

    def _continue_after(self, step: int, value: Any) -> None:
        """Hot path of replay: the generator waits on ``step``, which just succeeded with
        ``value``. Send it and, when the next command is a plain activity call, register it
        inline; everything else takes the general path (:meth:`_on_yield`)."""
        del self._pending[step]
        self._out.pop(step, None)
        self._blocked_on = None
        gen = self._gen
        assert gen is not None
        try:
            command = gen.send(value)
        except StopIteration as stop:
            self._complete(stop.value)
            return
        except Exception as exc:
            self._fail(exc)
            return
        location = self._location()
        if type(command) is ActivityCall and not command.kwargs:
            args = command.args
            if all(type(a) in PLAIN_TYPES for a in args):
                nxt = self._next_step
                self._next_step = nxt + 1
                p = _Pending(nxt, command, None, location, fingerprint(args, {}))
                self._pending[nxt] = p
                self._out[nxt] = p
                self._blocked_on = nxt
                return
        immediate = self._on_yield(command, location)
        if immediate is not None:
            self._advance(*immediate)

    def _location(self) -> Location | None:
        gen: Any = self._gen
        frame = gen.gi_frame
        inner = gen.gi_yieldfrom
        if inner is None or (inner.gi_frame is not None and inner.gi_frame.f_code in _ITER_CODES):
            return (frame.f_code.co_filename, frame.f_lineno)
        frame = None
        while gen is not None and getattr(gen, "gi_frame", None) is not None:
            code = gen.gi_frame.f_code
            if code.co_name != "__iter__" or "replaykit" not in code.co_filename:
                frame = gen.gi_frame
            gen = getattr(gen, "gi_yieldfrom", None)
        if frame is None:
            return None
        return (frame.f_code.co_filename, frame.f_lineno)

    def _on_yield(self, command: Any, location: Location | None) -> tuple[Any, Any] | None:
        """Register a yielded command; return (value, error) to send back at once, or None."""
        if type(command) is ActivityCall:  # the common case, without further checks
            step = self._next_step
            self._next_step = step + 1
            failure = self._register(step, command, None, location)
            if failure is not None:
                return None, failure
            self._blocked_on = step
            return None
        if not isinstance(command, Command) or isinstance(command, RetryTimer | Compensate):
            return None, InvalidCommand(
                f"workflow {self.workflow.name!r} yielded {command!r}, which is not a command; "
                "yield an activity call, Sleep, WaitEvent, All, ... (see replaykit commands)"
            )
        if isinstance(command, Recur):
            return self._recur(command)
        step = self._next_step
        self._next_step += 1
        if isinstance(command, All | AnyOf):
            return self._open_group(step, command, location)
        failure = self._register(step, command, None, location)
        if failure is not None:
            return None, failure
        self._blocked_on = step
        return None

    def _register(
        self, step: int, command: Command, group: int | None, location: Location | None
    ) -> BaseException | None:
        fp = ""
        if type(command) is ActivityCall:
            try:
                fp = command.args_fingerprint()
            except InvalidInput as exc:
                return exc
        p = _Pending(step, command, group, location, fp)
        self._pending[step] = p
        self._out[step] = p
        return None

    def _open_group(
        self, step: int, command: All | AnyOf, location: Location | None
    ) -> tuple[Any, Any] | None:
        members = list(command.members)
        for member in members:
            if not isinstance(member, MEMBER_TYPES):
                return None, InvalidCommand(
                    f"{type(command).__name__} members must be activity calls, Sleep, SleepUntil, "
                    f"WaitEvent, Receive or child workflows, not {member!r}"
                )
        if not members:
            if isinstance(command, AnyOf):
                return None, InvalidCommand("Any needs at least one member")
            return [], None
        steps = list(range(self._next_step, self._next_step + len(members)))
        self._next_step += len(members)
        self._groups[step] = _Group(step, command, steps)
        for member_step, member in zip(steps, members, strict=True):
            failure = self._register(member_step, member, step, location)
            if failure is not None:
                for s in steps:
                    self._pending.pop(s, None)
                    self._out.pop(s, None)
                del self._groups[step]
                return None, failure
        self._blocked_on = step
        return None

    def _recur(self, command: Recur) -> tuple[Any, Any] | None:
        try:
            self.recur_input = to_builtins(command.input, what="Recur input")
        except InvalidInput as exc:
            return None, exc
        self._abandon_all()
        self.status = "continued"
        assert self._gen is not None
        self._gen.close()
        return None

    # ------------------------------------------------------------------ outcomes

    def _resolve(self, p: _Pending, ok: bool, value: Any) -> None:
        del self._pending[p.step]
        self._out.pop(p.step, None)
        if p.group is not None:
            self._member_settled(p, ok, value)
        elif isinstance(p.command, Compensate):
            self._next_compensation()
        elif self._blocked_on == p.step:
            self._advance(value if ok else None, None if ok else value)

    def _member_settled(self, p: _Pending, ok: bool, value: Any) -> None:
        group = self._groups[p.group]  # type: ignore[index]
        group.outcomes[p.step] = (ok, value)
        command = group.command
        if isinstance(command, AnyOf):
            index = group.members.index(p.step)
            self._close_group(group, cancel=command.cancel_losers)
            if ok:
                self._advance((index, value))
            else:
                self._advance(None, value)
            return
        if len(group.outcomes) < len(group.members):
            return
        self._close_group(group, cancel=False)
        outcomes = [group.outcomes[s] for s in group.members]
        if command.settled:
            self._advance([v for _, v in outcomes])
            return
        failure = next((v for ok_, v in outcomes if not ok_), None)
        if failure is None:
            self._advance([v for _, v in outcomes])
        else:
            self._advance(None, failure)

    def _close_group(self, group: _Group, *, cancel: bool) -> None:
        del self._groups[group.step]
        for s in group.members:
            p = self._pending.get(s)
            if p is not None:
                self._abandon(p, cancel=cancel)

    def _abandon(self, p: _Pending, *, cancel: bool = True) -> None:
        del self._pending[p.step]
        self._abandoned[p.step] = p
        if self._out.pop(p.step, None) is not None:
            return  # never handed to the runtime: nothing to cancel
        if cancel and (p.retry_delay is not None or isinstance(p.command, _WAIT_TYPES)):
            self._cancelled.append(p.step)

    def _abandon_all(self) -> None:
        for p in list(self._pending.values()):
            self._abandon(p)
        self._groups.clear()
        self._blocked_on = None

    def _complete(self, value: Any) -> None:
        try:
            self.result = to_builtins(value, what=f"result of workflow {self.workflow.name!r}")
        except InvalidInput as exc:
            self._fail(exc)
            return
        self._abandon_all()
        self.status = "completed"

    def _fail(self, exc: BaseException) -> None:
        self._abandon_all()
        self._final_status = "cancelled" if isinstance(exc, WorkflowCancelled) else "failed"
        self.error = error_info(exc, retryable=False)
        self._compensating = True
        self._next_compensation()

    def _next_compensation(self) -> None:
        if not self._compensations:
            self._compensating = False
            self.status = self._final_status
            return
        of_step, call, original = self._compensations.pop()
        act = call.definition
        comp = act.compensate if act is not None else None
        comp_call: ActivityCall[Any] = ActivityCall(
            name=call.compensation or "",
            args=call.args,
            kwargs=call.kwargs,
            retry=comp.retry if comp is not None else call.retry,
            transactional=comp.transactional if comp is not None else True,
            definition=comp,
        )
        step = self._next_step
        self._next_step += 1
        command = Compensate(call=comp_call, of_step=of_step, original_result=original)
        self._register(step, command, None, None)

    # ------------------------------------------------------------------ event handlers

    def _on_started(self, event: WorkflowStarted) -> None:
        if self.started:
            raise NonDeterminismError(
                f"instance {self.instance_id!r}: history has a second WorkflowStarted",
                instance_id=self.instance_id,
            )
        self.started = True
        self.instance_id = self.instance_id or event.instance_id
        self.context = WorkflowContext(
            instance_id=self.instance_id,
            workflow=self.workflow.name,
            run=event.run,
            parent_id=event.parent_id,
            continued_from=event.continued_from,
            replaying=lambda: self.replaying,
            step=lambda: self._next_step,
        )
        if self.workflow.takes_input:
            try:
                value = self.workflow.decode_input(event.input)
            except InvalidInput as exc:
                self._fail(exc)
                return
            self._gen = self.workflow.fn(self.context, value)
        else:
            self._gen = self.workflow.fn(self.context)
        self._advance()

    def _on_cancel_requested(self, event: CancelRequested) -> None:
        if self.status != "running" or self._compensating or self._gen is None:
            return
        self._abandon_all()
        self._advance(None, WorkflowCancelled(reason=event.reason))

    def _check(self, event: StepEvent) -> _Pending | None:
        """The pending command ``event`` resolves; None for an abandoned one; raise on mismatch."""
        p = self._pending.get(event.step)
        if p is None:
            gone = self._abandoned.get(event.step)
            if gone is not None and fits(event, gone.command):
                return None
            raise mismatch(
                instance_id=self.instance_id,
                step=event.step,
                event=event,
                command=gone.command if gone else None,
                location=gone.location if gone else None,
                note="" if gone else self._waiting_note(event.step),
            )
        if not fits(event, p.command, p.fp) or (
            isinstance(p.command, ActivityCall) and event.fp and event.fp != p.fp
        ):
            raise mismatch(
                instance_id=self.instance_id,
                step=event.step,
                event=event,
                command=p.command,
                location=p.location,
            )
        return p

    def _waiting_note(self, step: int) -> str:
        if step < self._next_step:
            return " (it already has an outcome: the history holds two for one step)"
        if self.status != "running":
            return f" (the code already {self.status})"
        if self._blocked_on is not None:
            p = self._pending.get(self._blocked_on)
            if p is not None:
                return f"; the code is waiting at step {p.step} ({p.command.describe()})"
        return ""

    def _on_activity_completed(self, event: ActivityCompleted) -> None:
        p = self._pending.get(event.step)
        fast = (
            p is not None
            and type(p.command) is ActivityCall
            and p.command.name == event.name
            and (not event.fp or event.fp == p.fp)
        )
        if not fast:
            p = self._check(event)
        if p is None:
            self._remember_compensation(event.step, self._abandoned[event.step], event.result)
            return
        command: ActivityCall[Any] = p.command  # type: ignore[assignment]
        tp = command.result_type
        if tp is Any or tp is None or (type(event.result) is tp and tp in PLAIN_TYPES):
            if command.compensation:
                self._compensations.append((event.step, command, event.result))
            if p.group is None and self._blocked_on == p.step:
                self._continue_after(p.step, event.result)
            else:
                self._resolve(p, True, event.result)
            return
        try:
            value = convert(
                event.result, command.result_type, what=f"result of activity {command.name!r}"
            )
        except InvalidInput as exc:
            self._resolve(p, False, exc)
            return
        self._remember_compensation(event.step, p, event.result)
        self._resolve(p, True, value)

    def _remember_compensation(self, step: int, p: _Pending, result: Any) -> None:
        command = p.command
        if isinstance(command, ActivityCall) and command.compensation:
            self._compensations.append((step, command, result))

    def _on_activity_failed(self, event: ActivityFailed) -> None:
        p = self._check(event)
        if p is None:
            return
        command: ActivityCall[Any] = p.command  # type: ignore[assignment]
        if self._schedule_retry(p, command.retry, event.error, event.attempt):
            return
        err = raise_as(
            ActivityError,
            event.error,
            self.resolve_error,
            activity=command.name,
            step=event.step,
            attempts=event.attempt,
            retryable=event.error.retryable,
        )
        self._resolve(p, False, err)

    def _schedule_retry(
        self, p: _Pending, policy: RetryPolicy | None, error: ErrorInfo, attempt: int
    ) -> bool:
        policy = policy or DEFAULT_RETRY
        if not policy.allows_retry(
            attempt=attempt, type_name=error.type, retryable=error.retryable
        ):
            return False
        p.attempt = attempt + 1
        p.retry_delay = policy.delay_before(attempt + 1)
        self._out[p.step] = p
        return True

    def _scheduled_for(self, p: _Pending) -> ScheduledCommand:
        command = p.command
        if p.retry_delay is not None:
            target = command.call if isinstance(command, Compensate) else command
            name = target.identity()[1]
            command = RetryTimer(seconds=p.retry_delay, attempt=p.attempt, name=name)
        return ScheduledCommand(step=p.step, command=command, attempt=p.attempt, group=p.group)

    def _on_retry_timer_fired(self, event: RetryTimerFired) -> None:
        p = self._check(event)
        if p is None:
            return
        if p.attempt != event.attempt:
            raise mismatch(
                instance_id=self.instance_id,
                step=event.step,
                event=event,
                command=p.command,
                location=p.location,
                note=f" (retry timer for attempt {event.attempt}, expected {p.attempt})",
            )
        p.retry_delay = None
        self._out[p.step] = p

    def _on_timer_fired(self, event: TimerFired) -> None:
        p = self._check(event)
        if p is not None:
            self._resolve(p, True, None)

    def _on_event_received(self, event: EventReceived) -> None:
        p = self._check(event)
        if p is not None:
            self._resolve(p, True, event.event)

    def _on_event_timed_out(self, event: EventTimedOut) -> None:
        self._timed_out(event, lambda c: f"no event {c.type!r}", lambda c: c.type)

    def _on_message_received(self, event: MessageReceived) -> None:
        p = self._check(event)
        if p is not None:
            self._resolve(p, True, event.message)

    def _on_receive_timed_out(self, event: ReceiveTimedOut) -> None:
        self._timed_out(
            event, lambda c: f"no message on channel {c.channel!r}", lambda c: c.channel
        )

    def _timed_out(
        self,
        event: StepEvent,
        what: Callable[[Any], str],
        waited_for: Callable[[Any], str],
    ) -> None:
        """A WaitEvent or Receive reached its timeout: EventTimeout at its yield."""
        p = self._check(event)
        if p is None:
            return
        command: WaitEvent | Receive = p.command  # type: ignore[assignment]
        err = EventTimeout(
            f"instance {self.instance_id!r} step {event.step}: {what(command)} "
            f"arrived within {command.timeout} s",
            step=event.step,
            waited_for=waited_for(command),
        )
        self._resolve(p, False, err)

    def _on_child_completed(self, event: ChildCompleted) -> None:
        p = self._check(event)
        if p is None:
            return
        command: StartChild[Any] = p.command  # type: ignore[assignment]
        try:
            value = convert(event.result, command.result_type, what="child workflow result")
        except InvalidInput as exc:
            self._resolve(p, False, exc)
            return
        self._resolve(p, True, value)

    def _on_child_failed(self, event: ChildFailed) -> None:
        p = self._check(event)
        if p is None:
            return
        command: StartChild[Any] = p.command  # type: ignore[assignment]
        err = raise_as(
            ChildWorkflowError,
            event.error,
            self.resolve_error,
            activity=command.workflow,
            step=event.step,
            retryable=False,
        )
        self._resolve(p, False, err)

    def _on_value_recorded(self, event: ValueRecorded) -> None:
        p = self._check(event)
        if p is None:
            return
        value = event.value
        if isinstance(p.command, Now):
            value = datetime.fromtimestamp(float(value), tz=UTC)
        self._resolve(p, True, value)

    def _on_effect_applied(self, event: EffectApplied) -> None:
        p = self._check(event)
        if p is not None:
            self._resolve(p, True, event.value)

    def _on_compensation_completed(self, event: CompensationCompleted) -> None:
        p = self._check(event)
        if p is not None:
            self._resolve(p, True, event.result)

    def _on_compensation_failed(self, event: CompensationFailed) -> None:
        p = self._check(event)
        if p is None:
            return
        command: Compensate = p.command  # type: ignore[assignment]
        if self._schedule_retry(p, command.call.retry, event.error, event.attempt):
            return
        self._resolve(p, False, None)


def replay(
    workflow: Workflow[Any, Any],
    history: Iterable[Event],
    *,
    registry: Registry | None = None,
    error_resolver: ErrorResolver | None = None,
) -> tuple[Interpreter, Decision]:
    """Replay a whole ``history`` against ``workflow``; raises NonDeterminismError on mismatch."""
    events = list(history)
    instance_id = events[0].instance_id if events and isinstance(events[0], WorkflowStarted) else ""
    interp = Interpreter(
        workflow, instance_id=instance_id, registry=registry, error_resolver=error_resolver
    )
    return interp, interp.feed(events, replaying=True)


__all__ = ["Interpreter", "ReplayKitError", "error_info", "raise_as", "replay"]

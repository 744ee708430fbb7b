"""One small handler per history event kind, and the table that maps each kind to its handler.

A handler checks that its event fits the command pending at the event's step (a mismatch raises
:class:`NonDeterminismError`), then resolves that command with the value or error the workflow
receives at its ``yield``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from .bookkeeping import Pending
from .codec import PLAIN_TYPES, convert
from .commands import (
    ActivityCall,
    Compensate,
    DeprecatePatch,
    Now,
    PatchMarker,
    Receive,
    StartChild,
    Subscribe,
    Unsubscribe,
    WaitEvent,
)
from .context import WorkflowContext
from .driving import GeneratorDriver
from .errors import (
    ActivityError,
    ChildWorkflowError,
    EventTimeout,
    InvalidInput,
    NonDeterminismError,
    WorkflowCancelled,
    WorkflowTimedOut,
)
from .failures import raise_as
from .history import (
    ActivityCompleted,
    ActivityFailed,
    CancelRequested,
    ChildCompleted,
    ChildFailed,
    CompensationCompleted,
    CompensationFailed,
    EffectApplied,
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
from .matching import fits, mismatch

_HANDLER_NAMES: dict[type[Event], str] = {
    WorkflowStarted: "_on_started",
    CancelRequested: "_on_cancel_requested",
    ActivityCompleted: "_on_activity_completed",
    ActivityFailed: "_on_activity_failed",
    RetryTimerFired: "_on_retry_timer_fired",
    TimerFired: "_on_timer_fired",
    EventReceived: "_on_event_received",
    EventTimedOut: "_on_event_timed_out",
    MessageReceived: "_on_message_received",
    ReceiveTimedOut: "_on_receive_timed_out",
    ChildCompleted: "_on_child_completed",
    ChildFailed: "_on_child_failed",
    ValueRecorded: "_on_value_recorded",
    EffectApplied: "_on_effect_applied",
    CompensationCompleted: "_on_compensation_completed",
    CompensationFailed: "_on_compensation_failed",
}


class EventHandlers(GeneratorDriver):
    """Applies one history event to the interpreter's state (``_on_<event>``)."""

    _handler_cache: ClassVar[dict[type[Event], Callable[[Any, Any], None]]]

    @classmethod
    def _handler_table(cls) -> dict[type[Event], Callable[[Any, Any], None]]:
        """The state rules as a table: each history event kind and the handler (a function of
        the interpreter and the event) that applies it; built once per class."""
        table: dict[type[Event], Callable[[Any, Any], None]] | None = cls.__dict__.get(
            "_handler_cache"
        )
        if table is None:
            table = {kind: getattr(cls, name) for kind, name in _HANDLER_NAMES.items()}
            cls._handler_cache = table
        return table

    def _on_started(self, event: WorkflowStarted) -> None:
        if self.started:
            raise NonDeterminismError(
                f"instance {self.instance_id!r}: history has a second WorkflowStarted",
                instance_id=self.instance_id,
            )
        self.started = True
        self.deadline = event.deadline
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
        if event.timed_out:
            self.timed_out = True
        if self._closing is not None and self.status == "running":
            # It ended and waits for its children (parent_close="wait"): they are cancelled
            # now, and it ends as it would have once they have ended.
            for step, command in self._children.items():
                self._cancel_child(
                    step, command, "timed out" if event.timed_out else "was cancelled"
                )
            return
        if self.status != "running" or self._compensating or self._gen is None:
            return
        self._abandon_all()
        error: WorkflowCancelled
        if event.timed_out:
            error = WorkflowTimedOut(reason=event.reason or "its deadline passed")
        else:
            error = WorkflowCancelled(reason=event.reason)
        self._advance(None, error)

    def _check(self, event: StepEvent) -> Pending | None:
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
        self._timed_out(event, lambda c: f"no event {c.type!r} arrived", lambda c: c.type)

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
            f"within {command.timeout} s",
            step=event.step,
            waited_for=waited_for(command),
        )
        self._resolve(p, False, err)

    def _child_ended(self, event: ChildCompleted | ChildFailed) -> bool:
        """Forget a child that ended; True when no command waits for it (a child the run only
        tracks for its parent-close policy), and then end the run if it waited for that."""
        if self._children.pop(event.step, None) is None or event.step in self._pending:
            return False
        if self._closing is not None and not self._children:
            self.status, self._closing = self._closing, None
        return True

    def _on_child_completed(self, event: ChildCompleted) -> None:
        if self._child_ended(event):
            return
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
        if self._child_ended(event):
            return
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
        elif isinstance(p.command, PatchMarker):
            self._marker = None
            self._patches[p.command.id] = True
            value = None if isinstance(p.command, DeprecatePatch) else bool(value)
        self._resolve(p, True, value)

    def _on_effect_applied(self, event: EffectApplied) -> None:
        p = self._check(event)
        if p is not None:
            if isinstance(p.command, Subscribe):
                self._subscribed[p.command.channel] = p.command.mode
            elif isinstance(p.command, Unsubscribe):
                self._subscribed.pop(p.command.channel, None)
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


__all__ = ["EventHandlers"]

"""Runs one claimed instance: replay on resume, then the fast path until it waits or ends.

The executor keeps the interpreter live between steps (no replay per step) and folds every write
of a step into one commit: an activity's result, the timers/waits/messages the workflow issues
right after it, and the final status all land in the activity's own transaction. So an N-activity
workflow costs N+1 commits (start + one per activity).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

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
from ..core.errors import InvalidInput, ReplayKitError, UnknownWorkflow
from ..core.failures import error_info
from ..core.history import (
    ChildCompleted,
    ChildFailed,
    EffectApplied,
    Event,
    EventTimedOut,
    ReceiveTimedOut,
    RetryTimerFired,
    TimerFired,
    ValueRecorded,
    WorkflowStarted,
    decode_event,
    encode_event,
)
from ..core.interpreter import Interpreter
from ..core.outcomes import activity_outcome, call_of
from ..storage import (
    ChildSpec,
    CommitResult,
    InboxItem,
    InstanceRecord,
    PublishSpec,
    StepCommit,
    SubscriptionSpec,
    TimerSpec,
    WaitSpec,
)
from .activities import Outbox, RuntimeActivityContext, invoke

if TYPE_CHECKING:
    from .worker import Worker

log = logging.getLogger("replaykit.runtime")


class _Rollback(Exception):
    """Raised inside an activity transaction to roll it back after the activity failed."""


class Batch:
    """The writes collected for the next commit."""

    def __init__(self) -> None:
        self.events: list[bytes] = []
        self.consumed: list[int] = []
        self.timers: list[TimerSpec] = []
        self.waits: list[WaitSpec] = []
        self.cancel_steps: list[int] = []
        self.publishes: list[PublishSpec] = []
        self.subscriptions: list[SubscriptionSpec] = []
        self.children: list[ChildSpec] = []

    def drop_step(self, step: int) -> None:
        self.timers = [t for t in self.timers if t.step != step]
        self.waits = [w for w in self.waits if w.step != step]
        self.cancel_steps.append(step)


class InstanceExecutor:
    """Drives one instance held under this worker's lease."""

    def __init__(
        self,
        worker: Worker,
        record: InstanceRecord,
        *,
        started: WorkflowStarted | None = None,
        preloaded: tuple[list[bytes], list[InboxItem]] | None = None,
    ) -> None:
        self.worker = worker
        self.storage = worker.storage
        self.record = record
        self.instance_id = record.instance_id
        self.workflow = worker.registry.workflow(record.workflow)
        self.interp = Interpreter(
            self.workflow,
            instance_id=record.instance_id,
            registry=worker.registry,
            error_resolver=worker.resolve_error,
        )
        self._started = started
        self._preloaded = preloaded
        self.history_len = record.history_len
        self.batch = Batch()
        self.todo: deque[ScheduledCommand] = deque()
        self.lost = False

    # ------------------------------------------------------------------ entry point

    def run(self) -> None:
        """Run until the instance waits, ends, or the worker stops."""
        self._resume()
        while True:
            self._drain_immediate()
            activity = self._next_activity()
            if activity is None or self.interp.finished:
                result = self._commit_now()
                if self._after_commit(result):
                    return
                continue
            if self.worker.stopping or self.lost:
                self.worker.release(self.instance_id)
                return
            if self._run_activity(activity):
                return

    def _resume(self) -> None:
        if self._started is not None:
            self.history_len = 1
            self.worker.hooks.emit("workflow_started", self.instance_id, self.workflow.name)
            self._apply(self.interp.feed([self._started]))
            return
        raw, inbox = self._preloaded or self.storage.load_run(self.instance_id)
        self._preloaded = None
        self.history_len = len(raw)
        history = [decode_event(b) for b in raw]
        self.interp.feed(history, replaying=True)
        self.worker.hooks.emit("workflow_resumed", self.instance_id, self.workflow.name, len(raw))
        self._take_inbox(inbox)
        # Everything still unresolved, once: timers and waits registered before are re-registered
        # idempotently (same step), activities that never committed run again.
        self.todo = deque(self.interp.outstanding())

    def _take_inbox(self, items: list[InboxItem]) -> None:
        for item in items:
            self.batch.consumed.append(item.id)
            event = decode_event(item.event)
            if event.at:
                self._feed(event, stamp=False, raw=item.event)
            else:  # e.g. a timer event encoded when it was scheduled: stamp when it lands
                self._feed(event)

    # ------------------------------------------------------------------ feeding

    def _now(self) -> float:
        return self.worker.clock.time()

    def _feed(self, event: Event, *, stamp: bool = True, raw: bytes | None = None) -> None:
        if stamp:
            event = _stamp(event, self._now())
            raw = None
        self.batch.events.append(raw if raw is not None else encode_event(event))
        self._apply(self.interp.feed([event]))

    def _apply(self, decision: Any) -> None:
        for step in decision.cancelled:
            self.batch.drop_step(step)
        if decision.cancelled:
            gone = set(decision.cancelled)
            self.todo = deque(sc for sc in self.todo if sc.step not in gone)
        self.todo.extend(decision.commands)

    # ------------------------------------------------------------------ immediate commands

    def _next_activity(self) -> ScheduledCommand | None:
        while self.todo:
            sc = self.todo.popleft()
            if self.interp.is_outstanding(sc.step):
                return sc
        return None

    def _drain_immediate(self) -> None:
        kept: deque[ScheduledCommand] = deque()
        while self.todo:
            sc = self.todo.popleft()
            if isinstance(sc.command, ActivityCall | Compensate):
                kept.append(sc)
            elif self.interp.is_outstanding(sc.step):
                self._apply_immediate(sc)
        self.todo = kept

    def _apply_immediate(self, sc: ScheduledCommand) -> None:
        command, step, now = sc.command, sc.step, self._now()
        batch = self.batch
        match command:
            case Sleep(seconds=seconds):
                self._timer(step, now + seconds, TimerFired(step=step))
            case SleepUntil():
                self._timer(step, command.at, TimerFired(step=step))
            case RetryTimer(seconds=seconds, attempt=attempt, name=name):
                self._timer(
                    step, now + seconds, RetryTimerFired(step=step, name=name, attempt=attempt)
                )
                self.worker.hooks.emit(
                    "activity_retried", self.instance_id, step, name, attempt, seconds
                )
            case WaitEvent(type=type_, timeout=timeout, match=match):
                batch.waits.append(WaitSpec(step=step, kind="event", key=type_, match=match))
                if timeout is not None:
                    timed_out = EventTimedOut(step=step, name=type_)
                    self._timer(step, now + timeout, timed_out, is_timeout=True)
            case Receive(channel=channel, timeout=timeout):
                batch.waits.append(WaitSpec(step=step, kind="message", key=channel))
                if timeout is not None:
                    timed_out_r = ReceiveTimedOut(step=step, name=channel)
                    self._timer(step, now + timeout, timed_out_r, is_timeout=True)
            case Now() | Uuid() | Random() | SideEffect():
                self._record_value(step, command, now)
            case Publish() | SendTo():
                target = command.instance_id if isinstance(command, SendTo) else None
                batch.publishes.append(
                    PublishSpec(
                        channel=command.channel,
                        data=to_builtins(command.data, what="message data"),
                        metadata=dict(command.metadata),
                        sender=self.instance_id,
                        target=target,
                    )
                )
                kind = type(command).__name__
                self._feed(EffectApplied(step=step, name=command.channel, kind=kind))
            case Subscribe(channel=channel, mode=mode):
                batch.subscriptions.append(SubscriptionSpec(channel=channel, mode=mode))
                self._feed(EffectApplied(step=step, name=channel, kind="Subscribe"))
            case Unsubscribe(channel=channel):
                batch.subscriptions.append(SubscriptionSpec(channel=channel, subscribe=False))
                self._feed(EffectApplied(step=step, name=channel, kind="Unsubscribe"))
            case StartChild():
                self._start_child(step, command)
            case _:
                raise ReplayKitError(f"the runtime cannot execute {command!r}")

    def _timer(self, step: int, at: float, event: Event, *, is_timeout: bool = False) -> None:
        spec = TimerSpec(step=step, fire_at=at, event=encode_event(event), is_timeout=is_timeout)
        self.batch.timers.append(spec)

    def _record_value(self, step: int, command: Any, now: float) -> None:
        kind = type(command).__name__
        name = ""
        value: Any
        if isinstance(command, Now):
            value = now
        elif isinstance(command, Uuid):
            value = str(uuid.uuid4())
        elif isinstance(command, Random):
            value = random.random()
        else:
            name = command.name
            value = to_builtins(command.fn(), what=f"result of side effect {name!r}")
        self._feed(ValueRecorded(step=step, name=name, kind=kind, value=value))

    def _start_child(self, step: int, command: StartChild[Any]) -> None:
        child_id = command.instance_id or f"{self.instance_id}/{step}"
        try:
            child = self.worker.registry.workflow(command.workflow)
            raw_input = child.encode_input(command.input) if child.takes_input else None
        except (UnknownWorkflow, InvalidInput) as exc:
            error = error_info(exc, retryable=False)
            self._feed(
                ChildFailed(step=step, name=command.workflow, child_id=child_id, error=error)
            )
            return
        started = WorkflowStarted(
            workflow=child.name,
            instance_id=child_id,
            input=raw_input,
            parent_id=self.instance_id,
            at=self._now(),
        )
        self.batch.children.append(
            ChildSpec(
                instance_id=child_id,
                workflow=child.name,
                input=raw_input,
                started_event=encode_event(started),
                parent_step=step if command.wait else None,
            )
        )
        if not command.wait:
            self._feed(
                EffectApplied(step=step, name=command.workflow, kind="StartChild", value=child_id)
            )

    # ------------------------------------------------------------------ activities

    def _run_activity(self, sc: ScheduledCommand) -> bool:
        command = sc.command
        is_comp = isinstance(command, Compensate)
        call = call_of(sc)
        definition = call.definition or self.worker.registry.activities.get(call.name)
        hooks = self.worker.hooks
        hooks.emit("activity_started", self.instance_id, sc.step, call.name, sc.attempt)
        ctx = RuntimeActivityContext(
            instance_id=self.instance_id,
            workflow=self.workflow.name,
            step=sc.step,
            attempt=sc.attempt,
            outbox=Outbox(f"replaykit/{self.workflow.name}/{self.instance_id}"),
            heartbeat=lambda: self.worker.heartbeat_now(self.instance_id),
            compensating_result=command.original_result
            if isinstance(command, Compensate)
            else None,
        )
        started = time.perf_counter()
        failure: BaseException | None = None
        transactional = definition.transactional if definition is not None else call.transactional
        if definition is None:
            failure = UnknownWorkflow(f"no activity named {call.name!r} is registered")
        elif transactional:
            try:
                with self.storage.transaction() as tx:
                    ctx.bind(tx)
                    try:
                        result = self._call(definition, ctx, call)
                    except Exception as exc:
                        failure = exc
                        raise _Rollback from exc
                    self._record_success(sc, call, result, started, is_comp)
                    commit = self._build_commit()
                    commit.outbox = list(ctx.outbox.items)
                    outcome = tx.commit_step(commit)
                return self._after_commit(outcome)
            except _Rollback:
                pass
        else:
            try:
                result = self._call(definition, ctx, call)
            except Exception as exc:
                failure = exc
            if failure is None:
                self._record_success(sc, call, result, started, is_comp)
                return self._after_commit(self._commit_now(outbox=ctx.outbox.items))
        assert failure is not None
        self._record_failure(sc, call, failure)
        return False

    def _call(self, definition: Any, ctx: RuntimeActivityContext, call: ActivityCall[Any]) -> Any:
        raw = invoke(definition.fn, definition.takes_ctx, ctx, call, self.worker.async_runner)
        return to_builtins(raw, what=f"result of activity {call.name!r}")

    def _record_success(
        self, sc: ScheduledCommand, call: ActivityCall[Any], result: Any, started: float, comp: bool
    ) -> None:
        self._feed(activity_outcome(sc, result=result))
        hooks = self.worker.hooks
        if comp:
            hooks.emit("compensated", self.instance_id, sc.step, call.name, True)
        else:
            duration = time.perf_counter() - started
            hooks.emit(
                "activity_completed", self.instance_id, sc.step, call.name, sc.attempt, duration
            )

    def _record_failure(
        self, sc: ScheduledCommand, call: ActivityCall[Any], exc: BaseException
    ) -> None:
        self.worker.hooks.emit(
            "activity_failed", self.instance_id, sc.step, call.name, sc.attempt, exc
        )
        self._feed(activity_outcome(sc, error=exc))

    # ------------------------------------------------------------------ commits

    def _build_commit(self) -> StepCommit:
        """The commit for the current state (terminal, running with more work, or waiting)."""
        self._drain_immediate()
        worker, batch, interp = self.worker, self.batch, self.interp
        commit = StepCommit(
            instance_id=self.instance_id,
            owner=worker.owner,
            lease_expires_at=self._now() + worker.lease_seconds,
            history_len=self.history_len,
            events=batch.events,
            consumed_inbox=batch.consumed,
            timers=batch.timers,
            waits=batch.waits,
            cancel_steps=batch.cancel_steps,
            publishes=batch.publishes,
            subscriptions=batch.subscriptions,
            children=batch.children,
            now=self._now(),
        )
        if interp.finished:
            self._finish(commit)
        elif any(isinstance(sc.command, ActivityCall | Compensate) for sc in self.todo):
            commit.status = "running"
        else:
            commit.status = "waiting"
        return commit

    def _finish(self, commit: StepCommit) -> None:
        interp, record = self.interp, self.record
        if interp.status == "continued":
            commit.recur = True
            commit.recur_input = interp.recur_input
            commit.recur_started = encode_event(
                WorkflowStarted(
                    workflow=self.workflow.name,
                    instance_id=self.instance_id,
                    input=interp.recur_input,
                    run=record.run + 1,
                    continued_from=f"{self.instance_id}@{record.run}",
                    parent_id=record.parent_id,
                    at=self._now(),
                )
            )
            return
        commit.status = interp.status
        commit.output = interp.result
        commit.error = to_builtins(interp.error) if interp.error is not None else None
        if record.parent_id is not None and record.parent_step is not None:
            parent_event: Event
            if interp.status == "completed":
                parent_event = ChildCompleted(
                    step=record.parent_step,
                    name=self.workflow.name,
                    child_id=self.instance_id,
                    result=interp.result,
                    at=self._now(),
                )
            else:
                assert interp.error is not None
                parent_event = ChildFailed(
                    step=record.parent_step,
                    name=self.workflow.name,
                    child_id=self.instance_id,
                    error=interp.error,
                    at=self._now(),
                )
            commit.parent_event = encode_event(parent_event)

    def _commit_now(self, outbox: Any = ()) -> CommitResult:
        commit = self._build_commit()
        if outbox:
            commit.outbox = list(outbox)
        return self.storage.commit(commit)

    def _after_commit(self, result: CommitResult) -> bool:
        """Book-keeping after a commit; True when this executor is done with the instance."""
        batch = self.batch
        self.history_len += len(batch.events)
        had_children = bool(batch.children) or bool(batch.publishes)
        had_timers = [t.fire_at for t in batch.timers]
        self.batch = Batch()
        worker = self.worker
        if had_timers:
            worker.timer_scheduled(min(had_timers))
        if had_children:
            worker.wake()
        if self.interp.finished:
            worker.instance_finished(self)
            return True
        if result.released:
            worker.hooks.emit("workflow_suspended", self.instance_id, self.workflow.name)
            return True
        if result.inbox:
            self._take_inbox(result.inbox)
        return False


def _stamp(event: Event, now: float) -> Event:
    return msgspec.structs.replace(event, at=now)

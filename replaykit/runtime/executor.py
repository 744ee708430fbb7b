"""Runs one claimed instance: replay on resume, then the fast path until it waits or ends.

The executor keeps the interpreter live between steps (no replay per step) and folds every write
of a step into one commit: an activity's result, the timers/waits/messages the workflow issues
right after it, and the final status all land in the activity's own transaction. So an N-activity
workflow costs N+1 commits (start + one per activity).

What a command means is not decided here: ``replaykit.core.effects`` plans each command's effects
and :meth:`InstanceExecutor._do` writes each effect into the step's ``StepCommit``. The executor
reaches its worker only through :class:`ExecutorHost`.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any, Protocol

import msgspec

from ..core.codec import PLAIN_TYPES, to_builtins
from ..core.commands import ActivityCall, Compensate
from ..core.decisions import Decision, ScheduledCommand
from ..core.definitions import Registry
from ..core.effects import (
    CancelChild,
    CreateChild,
    Effect,
    Finish,
    Planner,
    Record,
    RegisterWait,
    RunActivity,
    Send,
    SetTimer,
    SkipMarker,
    Subscription,
    Values,
)
from ..core.errors import LeaseLost, ReplayKitError, UnknownWorkflow
from ..core.forking import renewed_subscriptions
from ..core.history import Event, RetryTimerFired, WorkflowStarted, decode_event, encode_event
from ..core.interpreter import Interpreter
from ..core.outcomes import activity_outcome, call_of
from ..storage import (
    CancelSpec,
    ChildSpec,
    CommitResult,
    InboxItem,
    InstanceRecord,
    PublishSpec,
    StepCommit,
    Storage,
    SubscriptionSpec,
    TimerSpec,
    WaitSpec,
)
from .activities import Abandoned, AsyncRunner, RuntimeActivityContext, invoke
from .clock import Clock
from .hooks import HookDispatcher

log = logging.getLogger("replaykit.runtime")


class ExecutorHost(Protocol):
    """What an executor needs from the worker that runs it (``Worker`` provides it)."""

    storage: Storage
    registry: Registry
    clock: Clock
    values: Values
    hooks: HookDispatcher
    owner: str
    lease_seconds: float
    async_runner: AsyncRunner
    stopping: bool

    def resolve_error(self, type_name: str) -> type[BaseException] | None: ...

    def release(self, instance_id: str) -> None: ...

    def heartbeat_now(self, instance_id: str) -> None: ...

    def timer_scheduled(self, fire_at: float) -> None: ...

    def wake(self) -> None: ...

    def instance_finished(self, executor: InstanceExecutor) -> None: ...


class InstanceExecutor:
    """Drives one instance held under its host worker's lease."""

    def __init__(
        self,
        host: ExecutorHost,
        record: InstanceRecord,
        *,
        started: WorkflowStarted | None = None,
        preloaded: tuple[list[bytes], list[InboxItem]] | None = None,
    ) -> None:
        self.host = host
        self.storage = host.storage
        self.record = record
        self.instance_id = record.instance_id
        self.workflow = host.registry.workflow(record.workflow)
        self.interp = Interpreter(
            self.workflow,
            instance_id=record.instance_id,
            registry=host.registry,
            error_resolver=host.resolve_error,
        )
        self.planner = Planner(
            self.workflow.name,
            self.instance_id,
            host.registry,
            host.values,
            stored=self,
            run=record.run,
        )
        self._started = started
        self._preloaded = preloaded
        self.history_len = record.history_len
        self.batch = self._new_batch()
        self.todo: deque[ScheduledCommand] = deque()  # issued, not planned yet
        self.activities: deque[ScheduledCommand] = deque()  # planned RunActivity, in order
        self.lost = False
        self._after_replay = False  # nothing fed since the stored history was replayed
        self._held = False  # commit as waiting although activities are queued (deadline)
        #: nothing of this instance is stored in rk_timers/rk_waits/rk_subscriptions: it was
        #: created here (no earlier run), has no deadline, and no commit here has set any
        self._clean = started is not None and record.deadline is None

    # ------------------------------------------------------------------ entry point

    def run(self) -> None:
        """Run until the instance waits, ends, or the worker stops."""
        self._resume()
        while True:
            self._drain()
            activity = self._next_activity()
            if activity is None or self.interp.finished:
                result = self._commit_now()
                if self._after_commit(result):
                    return
                continue
            if self.host.stopping or self.lost:
                self.host.release(self.instance_id)
                return
            if self._past_deadline():
                if self._hold_for_deadline(activity):
                    return
                continue
            if self._run_activity(activity):
                return

    def _past_deadline(self) -> bool:
        """Whether the instance's deadline has passed and the workflow was not told yet."""
        deadline = self.interp.deadline_ahead
        return deadline is not None and self._now() >= deadline

    def _hold_for_deadline(self, activity: ScheduledCommand) -> bool:
        """The deadline passed: run no more activities; commit as waiting, so that the deadline
        timer's cancellation (in the inbox, or on its way) is what the instance takes next.
        True when this executor is done with the instance."""
        self.activities.appendleft(activity)
        self._held = True
        try:
            result = self._commit_now()
        finally:
            self._held = False
        return self._after_commit(result)

    def _resume(self) -> None:
        host = self.host
        if self._started is not None:
            self.history_len = 1
            host.hooks.emit("workflow_started", self.instance_id, self.workflow.name)
            self._apply(self.interp.feed([self._started]))
            return
        raw, inbox = self._preloaded or self.storage.load_run(self.instance_id)
        self._preloaded = None
        self.history_len = len(raw)
        history = [decode_event(b) for b in raw]
        self.interp.feed(history, replaying=True)
        self._after_replay = True
        if history:
            now = self._now()
            for renewed in renewed_subscriptions(history[0], self.interp.subscriptions):
                self._do(renewed, now)
        host.hooks.emit("workflow_resumed", self.instance_id, self.workflow.name, len(raw))
        self._take_inbox(inbox)
        # Everything still unresolved, once: timers and waits registered before are re-registered
        # idempotently (same step), activities that never committed run again.
        self.todo = deque(self.interp.outstanding())

    def _take_inbox(self, items: list[InboxItem]) -> None:
        for index, item in enumerate(items):
            if index:
                self._plan_marker()
            self.batch.consumed_inbox.append(item.id)
            event = decode_event(item.event)
            if event.at:
                self._feed(event, stamp=False, raw=item.event)
            else:  # e.g. a timer event encoded when it was scheduled: stamp when it lands
                self._feed(event)

    # ------------------------------------------------------------------ feeding

    def _now(self) -> float:
        return self.host.clock.time()

    def _feed(self, event: Event, *, stamp: bool = True, raw: bytes | None = None) -> None:
        self._after_replay = False
        if stamp:
            event = _stamp(event, self._now())
            raw = None
        self.batch.events.append(raw if raw is not None else encode_event(event))
        self._apply(self.interp.feed([event]))

    def _apply(self, decision: Decision) -> None:
        for cancel in decision.cancel_children:
            now = self._now()
            self._do(self.planner.cancel_child(cancel, now), now)
        if decision.cancelled:
            for step in decision.cancelled:
                _drop_step(self.batch, step)
            gone = set(decision.cancelled)
            self.todo = deque(sc for sc in self.todo if sc.step not in gone)
            self.activities = deque(sc for sc in self.activities if sc.step not in gone)
        self.todo.extend(decision.commands)

    # ------------------------------------------------------------------ effects

    def _drain(self) -> None:
        """Plan every issued command and apply its effects (activities are queued to run)."""
        todo, interp = self.todo, self.interp
        while todo:
            sc = todo.popleft()
            if interp.is_outstanding(sc.step, sc.command):
                now = self._now()
                for effect in self.planner.plan(sc, now):
                    self._do(effect, now)

    def _plan_marker(self) -> None:
        """Decide an undecided ``Patched``/``DeprecatePatch`` now (see
        ``Interpreter.undecided_marker``)."""
        sc = self.interp.undecided_marker()
        if sc is not None:
            now = self._now()
            for effect in self.planner.plan(sc, now):
                self._do(effect, now)

    def registered_from(self, step: int) -> bool:
        """:class:`~replaykit.core.effects.Stored`: read only right after a replay, the one time
        the store can hold what older code issued at ``step`` or later."""
        if not self._after_replay:
            return False
        return any(s >= step for s in self.storage.registered_steps(self.instance_id))

    def _do(self, effect: Effect, now: float) -> None:
        """Write one effect into the step's commit (the one place the runtime applies effects)."""
        batch = self.batch
        match effect:
            case RunActivity(scheduled=scheduled):
                self.activities.append(scheduled)
            case SetTimer(step=step, fire_at=at, event=event):
                batch.timers.append(timer_spec(effect))
                if isinstance(event, RetryTimerFired):
                    self.host.hooks.emit(
                        "activity_retried",
                        self.instance_id,
                        step,
                        event.name,
                        event.attempt,
                        at - now,
                    )
            case RegisterWait(step=step, kind=kind, key=key, match=match):
                batch.waits.append(WaitSpec(step=step, kind=kind, key=key, match=match))
            case Record(event=event):
                self._feed(event)
            case SkipMarker(step=step):
                self._apply(self.interp.skip_marker(step))
            case Send(channel=channel, data=data, metadata=metadata, target=target):
                batch.publishes.append(
                    PublishSpec(
                        channel=channel,
                        data=data,
                        metadata=metadata,
                        sender=self.instance_id,
                        target=target,
                    )
                )
            case Subscription(channel=channel, mode=mode, subscribe=subscribe):
                batch.subscriptions.append(
                    SubscriptionSpec(channel=channel, mode=mode, subscribe=subscribe)
                )
            case CreateChild():
                child = self.host.registry.workflows.get(effect.workflow)
                batch.children.append(
                    ChildSpec(
                        instance_id=effect.child_id,
                        workflow=effect.workflow,
                        input=effect.input,
                        started_event=encode_event(effect.started),
                        parent_step=effect.parent_step,
                        version=None if child is None else child.version,
                        deadline=None if effect.deadline is None else timer_spec(effect.deadline),
                    )
                )
            case CancelChild(child_id=child_id, event=event):
                spec = CancelSpec(instance_id=child_id, event=encode_event(event))
                batch.cancel_children.append(spec)
            case Finish(next_run=WorkflowStarted() as next_run):
                batch.recur = True
                batch.recur_input = next_run.input
                batch.recur_started = encode_event(next_run)
                batch.recur_version = self.workflow.version
            case Finish(status=status, result=result, error=error, parent_event=parent_event):
                batch.status = status  # type: ignore[assignment]
                batch.output = result
                batch.error = None if error is None else to_builtins(error)
                batch.parent_event = None if parent_event is None else encode_event(parent_event)
            case _:
                raise ReplayKitError(f"the runtime cannot apply {effect!r}")

    def _next_activity(self) -> ScheduledCommand | None:
        while self.activities:
            sc = self.activities.popleft()
            if self.interp.is_outstanding(sc.step):
                return sc
        return None

    # ------------------------------------------------------------------ activities

    def _run_activity(self, sc: ScheduledCommand) -> bool:
        command = sc.command
        is_comp = isinstance(command, Compensate)
        call = call_of(sc)
        definition = call.definition or self.host.registry.activities.get(call.name)
        hooks = self.host.hooks
        hooks.emit("activity_started", self.instance_id, sc.step, call.name, sc.attempt)
        if (
            definition is not None
            and not definition.takes_ctx
            and call.timeout is None
            and self._time_left(command) is None
        ):
            # Nothing can reach a context (no session to open, no outbox) and nothing bounds
            # the call: call it and commit its step.
            started = time.perf_counter()
            try:
                result = self._call(definition, None, call)
            except Exception as exc:
                self._record_failure(sc, call, exc)
                return False
            self._record_success(sc, call, result, started, is_comp)
            return self._after_commit(self._commit_now())
        ctx = RuntimeActivityContext(
            instance_id=self.instance_id,
            workflow=self.workflow.name,
            step=sc.step,
            attempt=sc.attempt,
            heartbeat=lambda: self.host.heartbeat_now(self.instance_id),
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
            scope = self.storage.transaction()
            tx = scope.__enter__()
            ctx.bind(tx)
            try:
                result = self._call(definition, ctx, call, scope=scope)
            except Exception as exc:
                failure = exc
            else:
                self._record_success(sc, call, result, started, is_comp)
                commit = self._build_commit()
                commit.outbox = ctx.outbox_items()
                self._check_held(commit)
                outcome = tx.commit(commit)
            finally:
                if not ctx.abandoned:  # an abandoned attempt's thread ends its transaction
                    scope.__exit__(None, None, None)
            if failure is None:
                return self._after_commit(outcome)
        else:  # outside any transaction: given up if the deadline comes first
            try:
                result = self._call(definition, ctx, call, self._time_left(command))
            except Abandoned:  # nothing of this attempt is recorded
                ctx.abandoned = True
                return self._hold_for_deadline(sc)
            except Exception as exc:
                failure = exc
            if failure is None:
                self._record_success(sc, call, result, started, is_comp)
                return self._after_commit(self._commit_now(outbox=ctx.outbox_items()))
        assert failure is not None
        self._record_failure(sc, call, failure)
        return False

    def _call(
        self,
        definition: Any,
        ctx: RuntimeActivityContext | None,
        call: ActivityCall[Any],
        limit: float | None = None,
        scope: AbstractContextManager[Any] | None = None,
    ) -> Any:
        def on_abandon(attempt: Future[Any]) -> None:
            # the abandoned thread may still use ctx.session: roll its transaction back (and
            # give its connection back) only when the function has returned
            if scope is not None:
                attempt.add_done_callback(lambda _: scope.__exit__(None, None, None))

        runner = self.host.async_runner
        raw = invoke(
            definition.fn,
            definition.takes_ctx,
            ctx,
            call,
            runner,
            limit=limit,
            on_abandon=on_abandon,
        )
        if type(raw) in PLAIN_TYPES:  # already a JSON builtin: no conversion, no message built
            return raw
        return to_builtins(raw, what=f"result of activity {call.name!r}")

    def _time_left(self, command: Any) -> float | None:
        """Seconds until the deadline an activity (not a compensation) may run for; None when
        nothing bounds it."""
        deadline = self.interp.deadline_ahead
        if deadline is None or isinstance(command, Compensate):
            return None
        return max(deadline - self._now(), 0.0)

    def _record_success(
        self, sc: ScheduledCommand, call: ActivityCall[Any], result: Any, started: float, comp: bool
    ) -> None:
        self._feed(activity_outcome(sc, result=result, fp=self.interp.fingerprint_of(sc.step)))
        hooks = self.host.hooks
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
        self.host.hooks.emit(
            "activity_failed", self.instance_id, sc.step, call.name, sc.attempt, exc
        )
        self._feed(activity_outcome(sc, error=exc, fp=self.interp.fingerprint_of(sc.step)))

    # ------------------------------------------------------------------ commits

    def _new_batch(self) -> StepCommit:
        """The writes collected for the next commit (completed by :meth:`_build_commit`)."""
        return StepCommit(
            instance_id=self.instance_id,
            owner=self.record.lease_owner or self.host.owner,
            lease_token=self.record.lease_token,
            lease_seconds=self.host.lease_seconds,
            lease_expires_at=0.0,
            history_len=0,
        )

    def _build_commit(self) -> StepCommit:
        """The commit for the current state (terminal, running with more work, or waiting)."""
        self._drain()
        commit, now, record = self.batch, self._now(), self.record
        commit.history_len = self.history_len
        commit.lease_expires_at = now + self.host.lease_seconds
        commit.now = now
        if commit.timers or commit.waits or commit.subscriptions:
            self._clean = False
        commit.clean = self._clean
        if self.interp.finished:
            finish = self.planner.finish(
                self.interp,
                now,
                parent_id=record.parent_id,
                parent_step=record.parent_step,
                deadline=self.interp.deadline_ahead,
            )
            self._do(finish, now)
        else:
            commit.status = "running" if self.activities and not self._held else "waiting"
        return commit

    def _commit_now(self, outbox: Any = ()) -> CommitResult:
        commit = self._build_commit()
        if outbox:
            commit.outbox = list(outbox)
        self._check_held(commit)
        return self.storage.commit(commit)

    def _check_held(self, commit: StepCommit) -> None:
        """A fenced executor (its lease lost, or its worker's liveness hold) commits nothing."""
        if self.lost:
            raise LeaseLost(
                f"instance {self.instance_id!r}: worker {commit.owner!r} lost its lease or its "
                "liveness hold; the step was not recorded (another worker takes it over)",
                instance_id=self.instance_id,
                owner=commit.owner,
            )

    def _after_commit(self, result: CommitResult) -> bool:
        """Book-keeping after a commit; True when this executor is done with the instance."""
        batch = self.batch
        self.history_len += len(batch.events)
        had_children = bool(batch.children or batch.publishes or batch.cancel_children)
        had_timers = [t.fire_at for t in batch.timers]
        self.batch = self._new_batch()
        host = self.host
        if had_timers:
            host.timer_scheduled(min(had_timers))
        if had_children:
            host.wake()
        if self.interp.finished:
            host.instance_finished(self)
            return True
        if result.released:
            host.hooks.emit("workflow_suspended", self.instance_id, self.workflow.name)
            return True
        if result.inbox:
            self._take_inbox(result.inbox)
        return False


def timer_spec(timer: SetTimer) -> TimerSpec:
    """The stored form of a :class:`~replaykit.core.effects.SetTimer`."""
    event = encode_event(timer.event)
    return TimerSpec(
        step=timer.step, fire_at=timer.fire_at, event=event, is_timeout=timer.is_timeout
    )


def _drop_step(commit: StepCommit, step: int) -> None:
    """A cancelled step: no timer or wait for it in this commit, and none stored before."""
    commit.timers = [t for t in commit.timers if t.step != step]
    commit.waits = [w for w in commit.waits if w.step != step]
    commit.cancel_steps.append(step)


def _stamp(event: Event, now: float) -> Event:
    return msgspec.structs.replace(event, at=now)

"""The interpreter's state: its pending commands (one per step), its ``All``/``Any`` groups, and
what it has issued or cancelled since its last decision.

:class:`Bookkeeping` is the base of :class:`~replaykit.core.interpreter.Interpreter`; the layers on
top of it (compensation, driving, event handlers) change this state only through these records.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from .commands import (
    ActivityCall,
    All,
    AnyOf,
    ChannelMode,
    Command,
    Compensate,
    Receive,
    RetryTimer,
    Sleep,
    SleepUntil,
    StartChild,
    WaitEvent,
)
from .context import WorkflowContext
from .decisions import ChildCancel, Decision, ScheduledCommand, Status
from .definitions import Registry, Workflow, default_registry
from .errors import InvalidInput, NonDeterminismError
from .failures import ErrorResolver
from .history import ErrorInfo
from .matching import Location
from .retry import DEFAULT_RETRY, RetryPolicy

_WAIT_TYPES = (Sleep, SleepUntil, WaitEvent, Receive, RetryTimer)


class Pending:
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


class Group:
    """An ``All``/``Any`` waiting for its members (each a :class:`Pending` of its own step)."""

    __slots__ = ("command", "members", "outcomes", "step")

    def __init__(self, step: int, command: All | AnyOf, members: list[int]) -> None:
        self.step = step
        self.command = command
        self.members = members
        self.outcomes: dict[int, tuple[bool, Any]] = {}


class Bookkeeping:
    """The state of one interpreter and the records of its steps."""

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
        #: when the instance must end (from its ``WorkflowStarted``), and whether it was told so
        self.deadline: float | None = None
        self.timed_out = False
        self.context: WorkflowContext | None = None
        self._gen: Generator[Command, Any, Any] | None = None
        self._next_step = 1
        self._pending: dict[int, Pending] = {}
        self._groups: dict[int, Group] = {}
        self._abandoned: dict[int, Pending] = {}
        self._blocked_on: int | None = None
        self._marker: Pending | None = None  # a Patched/DeprecatePatch the next event decides
        self._patches: dict[str, bool] = {}  # patch id: taken? (decided once per run)
        self._subscribed: dict[
            str, ChannelMode
        ] = {}  # channel: mode, as this run's history left them
        self._compensations: list[tuple[int, ActivityCall[Any], Any]] = []
        self._compensating = False
        self._final_status: Status = "failed"
        self._out: dict[int, Pending] = {}  # issued since the last decision (built lazily)
        self._cancelled: list[int] = []
        #: children started in this run whose end it has not seen, by step (parent-close policy)
        self._children: dict[int, StartChild[Any]] = {}
        self._cancel_children: list[ChildCancel] = []
        #: how the run ends once its children with ``parent_close="wait"`` have ended
        self._closing: Status | None = None
        self._broken: NonDeterminismError | None = None
        self.events_applied = 0

    @property
    def deadline_ahead(self) -> float | None:
        """The instance's deadline while the workflow has not been told that it passed (None:
        no deadline, or told): what a worker enforces and a ``Recur`` carries on."""
        return None if self.timed_out else self.deadline

    def _take_decision(self) -> Decision:
        decision = Decision(
            commands=tuple(self._scheduled_for(p) for p in self._out.values()),
            cancelled=tuple(self._cancelled),
            cancel_children=tuple(self._cancel_children),
            status=self.status,
            result=self.result,
            error=self.error,
            recur_input=self.recur_input,
        )
        self._out = {}
        self._cancelled = []
        self._cancel_children = []
        return decision

    def _scheduled_for(self, p: Pending) -> ScheduledCommand:
        command = p.command
        if p.retry_delay is not None:
            target = command.call if isinstance(command, Compensate) else command
            name = target.identity()[1]
            command = RetryTimer(seconds=p.retry_delay, attempt=p.attempt, name=name)
        return ScheduledCommand(step=p.step, command=command, attempt=p.attempt, group=p.group)

    def _register(
        self, step: int, command: Command, group: int | None, location: Location | None
    ) -> BaseException | None:
        fp = ""
        if type(command) is ActivityCall:
            try:
                fp = command.args_fingerprint()
            except InvalidInput as exc:
                return exc
        elif type(command) is StartChild:
            self._children[step] = command
        p = Pending(step, command, group, location, fp)
        self._pending[step] = p
        self._out[step] = p
        return None

    def _schedule_retry(
        self, p: Pending, policy: RetryPolicy | None, error: ErrorInfo, attempt: int
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

    def _close_group(self, group: Group, *, cancel: bool) -> None:
        del self._groups[group.step]
        for s in group.members:
            p = self._pending.get(s)
            if p is not None:
                self._abandon(p, cancel=cancel)
                if cancel:
                    self._close_child(s, "no longer waits for it (it lost an Any)")

    def _close_child(self, step: int, why: str) -> None:
        """Apply the parent-close policy of the child started at ``step`` (if it may still
        run): cancel it, forget it (abandon), or keep waiting for its end (wait)."""
        command = self._children.get(step)
        if command is None or command.parent_close == "wait":
            return
        del self._children[step]
        if command.parent_close == "cancel":
            self._cancel_child(step, command, why)

    def _cancel_child(self, step: int, command: StartChild[Any], why: str) -> None:
        reason = f"its parent {self.instance_id!r} {why}"
        self._cancel_children.append(ChildCancel(step=step, command=command, reason=reason))

    def _close_children(self, why: str) -> None:
        """The run ends (``why``: how): apply every running child's parent-close policy."""
        for step in list(self._children):
            self._close_child(step, why)

    def _end(self, status: Status) -> None:
        """End the run with ``status``, or once the children it waits for have ended."""
        if self._children:
            self._closing = status
        else:
            self.status = status

    def _abandon(self, p: Pending, *, cancel: bool = True) -> None:
        del self._pending[p.step]
        self._abandoned[p.step] = p
        if self._out.pop(p.step, None) is not None:
            self._children.pop(p.step, None)  # a child never created
            return  # never handed to the runtime: nothing to cancel
        if cancel and (p.retry_delay is not None or isinstance(p.command, _WAIT_TYPES)):
            self._cancelled.append(p.step)

    def _abandon_all(self) -> None:
        for p in list(self._pending.values()):
            self._abandon(p)
        self._groups.clear()
        self._blocked_on = None
        self._marker = None


__all__ = ["Bookkeeping", "Group", "Pending"]

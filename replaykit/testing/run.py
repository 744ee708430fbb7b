"""One workflow instance in the in-memory test environment: its history, interpreter and inbox.

A :class:`TestRun` feeds each event to its interpreter and hands the decision's commands to its
:class:`~replaykit.testing.environment.WorkflowEnvironment`, which executes them.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import msgspec

from ..core.codec import to_builtins
from ..core.commands import Receive, WaitEvent
from ..core.decisions import Decision
from ..core.definitions import Workflow
from ..core.errors import ReplayKitError, WorkflowFailed
from ..core.event_match import data_matches
from ..core.history import (
    CancelRequested,
    Event,
    EventData,
    EventReceived,
    Message,
    MessageReceived,
    WorkflowStarted,
)
from ..core.interpreter import Interpreter

if TYPE_CHECKING:
    from .environment import WorkflowEnvironment


class WorkflowStuck(ReplayKitError):
    """The workflow waits for something that will never come in this test (an event, a message)."""


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
    return data_matches(data, match)


def event_for(step: int, wait: WaitEvent | Receive, got: EventData | Message) -> Event:
    if isinstance(wait, WaitEvent):
        assert isinstance(got, EventData)
        return EventReceived(step=step, name=wait.type, event=got)
    assert isinstance(got, Message)
    return MessageReceived(step=step, name=wait.channel, message=got)


__all__ = ["TestRun", "WorkflowStuck", "event_for"]

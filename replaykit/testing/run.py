"""One workflow instance in the in-memory test environment: its history, interpreter and the step
being written, plus the calls a test makes on it (send an event, cancel, run to the end).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from ..core.decisions import Decision, ScheduledCommand
from ..core.definitions import Registry, Workflow
from ..core.effects import Finish, Planner, Values
from ..core.errors import NonDeterminismError, ReplayKitError, WorkflowFailed
from ..core.failures import cancelled
from ..core.history import Event
from ..core.interpreter import Interpreter
from .clock import VirtualClock
from .store import MemoryStep, MemoryStore, Wait, cancelling


class Environment(Protocol):
    """What a :class:`TestRun` uses of its :class:`~replaykit.testing.WorkflowEnvironment`."""

    @property
    def registry(self) -> Registry: ...

    @property
    def values(self) -> Values: ...

    @property
    def clock(self) -> VirtualClock: ...

    @property
    def store(self) -> MemoryStore: ...

    def run_until_idle(self) -> None: ...

    def advance(self, seconds: float) -> None: ...

    def fire_next_timer(self, *, limit: float) -> bool: ...

    def send_event(
        self,
        type: str,
        data: Any = None,
        *,
        instance_id: str | None = None,
        source: str = "replaykit",
        id: str = "",
        subject: str | None = None,
        time: str | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> bool: ...

    def send_message(
        self,
        instance_id: str,
        channel: str,
        data: Any = None,
        metadata: dict[str, str] | None = None,
    ) -> None: ...

    def cancel(self, instance_id: str, reason: str = "") -> None: ...


class WorkflowStuck(ReplayKitError):
    """The workflow waits for something that will never come in this test (an event, a message)."""


class TestRun:
    """One workflow instance inside a :class:`~replaykit.testing.WorkflowEnvironment`."""

    __test__ = False

    def __init__(
        self,
        env: Environment,
        wf: Workflow[Any, Any],
        instance_id: str,
        *,
        parent_id: str | None = None,
        parent_step: int | None = None,
        version: str | None = None,
    ) -> None:
        self.env = env
        self.workflow = wf
        self.instance_id = instance_id
        self.parent_id = parent_id
        self.parent_step = parent_step
        #: the version of the code that started the current run (``InstanceRecord.version``)
        self.version = version or wf.version
        #: a fork (``env.fork``): the instance whose history it copied, the step it re-ran from
        self.forked_from: str | None = None
        self.forked_step: int | None = None
        self.history: list[Event] = []
        self.archived: list[list[Event]] = []  # histories of earlier runs (ended with Recur)
        self.interpreter = Interpreter(wf, instance_id=instance_id, registry=env.registry)
        self.planner = Planner(wf.name, instance_id, env.registry, env.values, stored=self)
        self.decision = Decision()
        self.activity_calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        # the step being written (see testing.executor)
        self.todo: deque[ScheduledCommand] = deque()
        self.activities: deque[ScheduledCommand] = deque()
        self.step = MemoryStep()
        #: the mismatch that blocked this run (see ``WorkflowEnvironment.resume``)
        self.blocked: NonDeterminismError | None = None

    # -- status -----------------------------------------------------------------------------

    @property
    def run_number(self) -> int:
        """The current run (1, then one more after each ``Recur``)."""
        return self.planner.run

    @run_number.setter
    def run_number(self, run: int) -> None:
        self.planner.run = run

    @property
    def status(self) -> str:
        """The status ``App.status(id).status`` would give: the decision's, ``waiting`` while
        the run is parked on a timer, event, message or child, ``queued`` while its queue has
        not admitted it, ``cancelling`` from a cancellation (``cancel()``, its deadline, its
        parent) until it has ended, or ``blocked`` when its replay broke."""
        if self.blocked is not None:
            return "blocked"
        stored = self.env.store.instances[self.instance_id]
        status = stored.status if stored.status in ("queued", "waiting") else self.decision.status
        return cancelling(stored, status)

    @property
    def finished(self) -> bool:
        return self.decision.finished

    @property
    def waits(self) -> dict[int, Wait]:
        """The waits stored for this instance, by step."""
        return self.env.store.waits(self.instance_id)

    @property
    def subscriptions(self) -> dict[str, str]:
        """The channels this instance subscribes to, with their mode."""
        return self.env.store.subscriptions(self.instance_id)

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
        if self.blocked is not None:
            raise self.blocked
        self.env.run_until_idle()
        while not self.finished:
            if not self.env.fire_next_timer(limit=self.env.clock.now + max_seconds):
                waits = ", ".join(w.describe() for w in self.waits.values()) or "nothing"
                if self.status == "queued":
                    waits = "its queue to admit it (its running instances wait)"
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
        if d.status == "cancelled":  # as App.result()
            raise cancelled(self.instance_id, err)
        raise WorkflowFailed(
            f"instance {self.instance_id!r} {d.status}: "
            f"{err.type if err else ''}: {err.message if err else ''}",
            instance_id=self.instance_id,
            type_name=err.type if err else "",
            status=d.status,
        )

    def registered_from(self, step: int) -> bool:
        """:class:`~replaykit.core.effects.Stored`: the in-memory store is read at no cost."""
        return any(s >= step for s in self.env.store.registered_steps(self.instance_id))

    # -- input from outside -----------------------------------------------------------------

    def send_event(self, type: str, data: Any = None, **attrs: Any) -> TestRun:
        """Send an event to this instance (kept until a fitting WaitEvent takes it)."""
        self.env.send_event(type, data, instance_id=self.instance_id, **attrs)
        return self

    def send_message(
        self, channel: str, data: Any = None, metadata: dict[str, str] | None = None
    ) -> TestRun:
        """Send a channel message straight to this instance (``app.send_message``)."""
        self.env.send_message(self.instance_id, channel, data, metadata)
        return self

    def cancel(self, reason: str = "") -> TestRun:
        """Ask the instance to cancel; compensations run."""
        self.env.cancel(self.instance_id, reason)
        return self

    # -- the end of a run ---------------------------------------------------------------------

    def finish(self, now: float) -> Finish:
        """What the end of the current run means (see core.effects.Planner.finish)."""
        return self.planner.finish(
            self.interpreter,
            now,
            parent_id=self.parent_id,
            parent_step=self.parent_step,
            deadline=self.interpreter.deadline_ahead,
        )

    def recur(self) -> None:
        """After ``Recur``: archive this run's history; the next run starts from its inbox."""
        self.archived.append(self.history)
        self.history = []
        self.run_number += 1
        self.version = self.workflow.version
        self.interpreter = Interpreter(
            self.workflow, instance_id=self.instance_id, registry=self.env.registry
        )
        self.todo.clear()
        self.activities.clear()


__all__ = ["Environment", "TestRun", "WorkflowStuck"]

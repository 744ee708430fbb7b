"""An in-memory runtime with a virtual clock: it runs its instances at once, the way a production
worker runs them (:mod:`.executor`), against an in-memory store with the database's delivery rules
(:mod:`.store`), and fires their timers when virtual time reaches them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.codec import to_builtins
from ..core.commands import check_timeout
from ..core.definitions import Registry, Workflow, default_registry
from ..core.effects import Send, SetTimer, deadline_timer
from ..core.errors import InvalidInput, NonDeterminismError, WorkflowNotFound
from ..core.forking import fork_cut, forked_start, renewed_subscriptions
from ..core.history import Event, EventData, Message, WorkflowStarted
from ..core.interpreter import Interpreter
from ..core.queues import QueueSpec, QueueStats, queue_name, queue_spec
from ..core.validation import check_event, check_id
from .activity import OutboxRecorder
from .clock import DEFAULT_START, VirtualClock
from .executor import MemoryExecutor, SeededValues
from .run import TestRun
from .schedules import MemorySchedules, ScheduleEnvironment
from .store import MemoryStore


class WorkflowEnvironment(MemoryExecutor, ScheduleEnvironment):
    """An in-memory runtime with a virtual clock for tests.

    ``activities`` maps activity names to fakes (called like the real one, with ``ctx`` first);
    activities without a fake run for real. The client calls mirror ``App``'s: :meth:`start`,
    :meth:`send_event`, :meth:`publish`, :meth:`send_message`, :meth:`cancel`, and the schedule
    calls (:meth:`schedule`, :meth:`pause_schedule`, ... see :mod:`.schedules`).
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
        self.values = SeededValues(seed)
        self.random = self.values.generator
        self.runs: dict[str, TestRun] = {}
        self.outbox = OutboxRecorder()
        self.store = MemoryStore()
        self.schedules = MemorySchedules()
        self._running = False

    @property
    def published(self) -> list[Message]:
        """Every message published on a channel (not those sent to one instance), in order."""
        return [m.message for m in self.store.messages if m.target is None]

    # -- starting -------------------------------------------------------------------------------

    def start(
        self,
        wf: Workflow[Any, Any],
        input: Any = None,
        *,
        instance_id: str | None = None,
        timeout: float | None = None,
    ) -> TestRun:
        """Start ``wf`` with ``input`` and run it until it waits or ends (the same
        ``instance_id`` twice gives the same run). ``timeout``: as ``App.start_workflow``'s,
        in virtual time."""
        if instance_id is not None:
            check_id(instance_id)
        raw = wf.encode_input(input)
        seconds = None if timeout is None else check_timeout(timeout, "timeout")
        instance_id = instance_id or f"{wf.name}-{len(self.runs) + 1}"
        if instance_id in self.runs:
            return self.runs[instance_id]
        now = self.clock.now
        deadline = None if seconds is None else now + seconds
        started = WorkflowStarted(
            workflow=wf.name, instance_id=instance_id, input=raw, deadline=deadline, at=now
        )
        timer = None if deadline is None else deadline_timer(deadline)
        run = self._create(wf, started, deadline=timer)
        self.run_until_idle()
        return run

    # -- queues -----------------------------------------------------------------------------------

    def queue(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        per_worker: int | None = None,
        rate: tuple[int, float] | None = None,
    ) -> QueueSpec:
        """Declare a queue, as ``App.queue`` does (the environment is one worker, so
        ``per_worker`` limits like ``concurrency``)."""
        spec = queue_spec(name, concurrency=concurrency, per_worker=per_worker, rate=rate)
        self.store.queues.declare(spec)
        return spec

    def enqueue(
        self,
        queue: str | QueueSpec,
        wf: Workflow[Any, Any],
        input: Any = None,
        *,
        instance_id: str | None = None,
        priority: int = 0,
        dedup_key: str | None = None,
        timeout: float | None = None,
    ) -> TestRun:
        """Start ``wf`` on ``queue``, as ``App.enqueue`` does: it runs when the queue admits
        it (limits on the virtual clock), with a deadline ``timeout`` seconds after that.
        Raises UnknownQueue and DuplicateQueueKey."""
        if isinstance(queue, QueueSpec):
            self.store.queues.specs.setdefault(queue.name, queue)
        queue = queue_name(queue)
        if instance_id is not None:
            check_id(instance_id)
        raw = wf.encode_input(input)
        seconds = None if timeout is None else check_timeout(timeout, "timeout")
        instance_id = instance_id or f"{wf.name}-{len(self.runs) + 1}"
        if instance_id in self.runs:
            return self.runs[instance_id]
        started = WorkflowStarted(
            workflow=wf.name, instance_id=instance_id, input=raw, at=self.clock.now
        )
        self.store.enqueue(instance_id, started, queue, priority, dedup_key, seconds)
        run = TestRun(self, wf, instance_id)
        self.runs[instance_id] = run
        self.run_until_idle()
        return run

    def queue_stats(self) -> list[QueueStats]:
        """Every declared queue: its limits, how many instances wait in it, how many run."""
        return self.store.queues.stats(self.store.status)

    def _create(
        self, wf: Workflow[Any, Any], started: WorkflowStarted, deadline: SetTimer | None = None
    ) -> TestRun:
        """A new pending instance (its id unused) whose inbox holds ``started``, with its
        ``deadline`` timer."""
        run = TestRun(self, wf, started.instance_id)
        self.runs[started.instance_id] = run
        self.store.create(started.instance_id, started, deadline=deadline)
        return run

    def run(self, wf: Workflow[Any, Any], input: Any = None, **kwargs: Any) -> Any:
        """Start ``wf`` and return its decoded result (virtual time runs as needed)."""
        return self.start(wf, input, **kwargs).result()

    def resume(self, wf: Workflow[Any, Any], history: list[Event]) -> TestRun:
        """Rebuild an instance from recorded ``history`` (as after a crash) and continue it.

        When ``wf`` no longer replays ``history`` the run is ``blocked`` (as a worker leaves it):
        ``run.status == "blocked"``, ``run.blocked`` holds the ``NonDeterminismError`` and
        ``run.result()`` raises it; resuming with fixed code carries on.

        In a fresh environment the instance has nothing stored but its history. Resuming an
        instance of this environment (``env.resume(new_code, run.history)``) is what a worker of
        a new deploy does: the timers, waits, children and inbox stored for it stay, and its
        inbox is fed before anything is planned."""
        first = history[0]
        assert isinstance(first, WorkflowStarted)
        old = self.runs.get(first.instance_id)
        run = TestRun(
            self,
            wf,
            first.instance_id,
            parent_id=first.parent_id,
            parent_step=None if old is None else old.parent_step,
            version=None if old is None else old.version,
        )
        run.run_number = first.run
        try:
            issued = _issue_times(wf, history, self.registry)
        except NonDeterminismError:
            issued = {}  # the replay in _rebuild breaks the same way: the run is blocked
        return self._rebuild(run, history, issued)

    def fork(self, instance_id: str, *, step: int, new_id: str | None = None) -> TestRun:
        """A new instance from ``instance_id``'s history up to ``step``, run by the code now
        registered under its workflow's name, as ``App.fork`` does: the steps before ``step``
        replay from the copied history, ``step`` and the rest run again (timers from now on).
        The new run's ``forked_from``/``forked_step`` say where it came from.

        Raises WorkflowNotFound, StepOutOfRange, or InvalidInput when ``new_id`` exists."""
        source = self.runs.get(instance_id)
        if source is None:
            raise WorkflowNotFound(f"cannot fork: no workflow instance with id {instance_id!r}")
        events = fork_cut(source.history, step, instance_id=instance_id)
        new_id = new_id if new_id is not None else f"{instance_id}~fork-{len(self.runs) + 1}"
        if check_id(new_id, "new_id") in self.runs:
            raise InvalidInput(
                f"cannot fork instance {instance_id!r} into {new_id!r}: an instance with that "
                "id exists; choose another new id"
            )
        wf = self.registry.workflow(source.workflow.name)
        run = TestRun(self, wf, new_id, version=source.version)
        run.forked_from, run.forked_step = instance_id, step
        started = forked_start(source.history[0], new_id, instance_id, step)
        history = [started, *source.history[1:events]]
        return self._rebuild(run, history, {})

    def _rebuild(self, run: TestRun, history: list[Event], issued: dict[int, float]) -> TestRun:
        """Give ``run`` the stored ``history``, replay it, plan what it left outstanding (each
        command at the time it was issued, else now) and run on."""
        self.runs[run.instance_id] = run
        run.history = list(history)
        try:
            run.decision = run.interpreter.feed(history, replaying=True)
        except NonDeterminismError as exc:  # as a worker does: blocked until a fixed resume
            run.blocked = exc
            self.store.create(run.instance_id, None)
            self.store.block(run.instance_id)
            return run
        due = run.interpreter.deadline_ahead  # still to come
        self.store.create(
            run.instance_id, None, deadline=None if due is None else deadline_timer(due)
        )
        self.store.hold(run.instance_id)  # a blocked instance runs again
        self.clock.now = max(self.clock.now, history[-1].at)
        for renewed in renewed_subscriptions(history[0], run.interpreter.subscriptions):
            self._do(run, renewed)
        self._take_inbox(run)
        run.todo.clear()
        for scheduled in run.interpreter.outstanding():
            # Durable timers keep their original deadlines: plan each command at the time it
            # was first issued (timers then fire when due, as after a real crash).
            for effect in run.planner.plan(scheduled, issued.get(scheduled.step, self.clock.now)):
                self._do(run, effect)
        self._drive(run)
        self.run_until_idle()
        return run

    # -- the loop ---------------------------------------------------------------------------------

    def run_until_idle(self) -> None:
        """Run every runnable instance until all of them wait or have ended. Timers already due
        fire too (``Sleep(0)``, a ``SleepUntil`` in the past), as a database's timer loop fires
        them at once; the clock does not move."""
        if self._running:
            return
        self._running = True
        try:
            while True:
                self.store.admit(self.clock.now)  # as a worker admits before it claims
                instance_id = self.store.next_runnable()
                if instance_id is not None:
                    self._drive(self.runs[instance_id])
                elif not self.store.fire_due_timers(self.clock.now):
                    break
        finally:
            self._running = False

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds``, firing every timer due on the way."""
        target = self.clock.now + seconds
        self.run_until_idle()
        while self.fire_next_timer(limit=target):
            pass
        self.clock.now = max(self.clock.now, target)

    def fire_next_timer(self, *, limit: float) -> bool:
        """Jump to the next moment a timer or a schedule is due (not past ``limit``), fire
        every timer and schedule due then, and run; False when none is due by ``limit``."""
        self.run_until_idle()
        while (at := self._next_due()) is not None and at <= limit:
            now = max(self.clock.now, at)
            fired = self.store.fire_due_timers(now)
            started = self.fire_due_schedules(now)
            if fired or started:
                self.clock.now = now
                self.run_until_idle()
                return True
        return False

    def _next_due(self) -> float | None:
        times = (self.store.next_timer_at(), self.schedules.next_at())
        return min((t for t in times if t is not None), default=None)

    # -- client calls (as App's) ------------------------------------------------------------------

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
    ) -> bool:
        """Send an event: to ``instance_id`` (kept until it waits for it), or to every instance
        that waits for ``type`` now or later (among those that exist now). False: a duplicate
        ``(source, id)``."""
        event = EventData(
            type=type,
            data=to_builtins(data, what="event data"),
            id=id,
            source=source,
            subject=subject,
            time=time,
            extensions=dict(extensions or {}),
        )
        check_event(event, instance_id)
        stored = self.store.send_event(event, instance_id, self.clock.now)
        self.run_until_idle()
        return stored

    def publish(
        self, channel: str, data: Any = None, metadata: dict[str, str] | None = None
    ) -> None:
        """Publish a message on ``channel`` from outside any workflow."""
        self._send(channel, data, metadata, None)

    def send_message(
        self,
        instance_id: str,
        channel: str,
        data: Any = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Send a message on ``channel`` directly to one instance."""
        if check_id(instance_id) not in self.runs:
            raise WorkflowNotFound(f"cannot send a message: no instance {instance_id!r}")
        self._send(channel, data, metadata, instance_id)

    def _send(
        self, channel: str, data: Any, metadata: dict[str, str] | None, target: str | None
    ) -> None:
        check_id(channel, "channel")
        data = to_builtins(data, what="message data")
        send = Send(channel=channel, data=data, metadata=dict(metadata or {}), target=target)
        self.store.publish(send, sender=None, now=self.clock.now)
        self.run_until_idle()

    def cancel(self, instance_id: str, reason: str = "") -> None:
        """Ask an instance to cancel: ``WorkflowCancelled`` at its current yield."""
        self.store.cancel(instance_id, reason, self.clock.now)
        self.run_until_idle()


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

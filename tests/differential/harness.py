"""The differential harness: one script of outside stimuli, run in memory and in ``App``.

A :class:`Scenario` names the workflows it needs and a script of stimuli (start an instance,
send an event, publish or send a message, cancel, move the clock). :func:`run_memory` plays the
script in :class:`~replaykit.testing.WorkflowEnvironment`; :func:`run_app` plays it in an
:class:`~replaykit.App` on a database, with a :class:`ManualClock` and waiting for quiescence after
every stimulus, so that both see the same times and the same order of outside input. Each returns
an :class:`Outcome`: every instance's status, result or error and its histories (archived runs
too), plus what activities wrote to the outbox, normalised only where runs legitimately differ
(see :func:`normalise`). :func:`assert_same` fails with a unified diff, one event per line.
"""

from __future__ import annotations

import difflib
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from replaykit import App
from replaykit.core.definitions import Activity, Registry, Workflow
from replaykit.core.errors import DuplicateQueueKey
from replaykit.runtime.outbox import OutboxRelay
from replaykit.testing import WorkflowEnvironment
from replaykit.testing.clock import DEFAULT_START
from replaykit.testing.executor import SeededValues

SEED = 0  # both sides draw Uuid and Random values from SeededValues(SEED)

# -- stimuli ----------------------------------------------------------------------------------
#
# Each stimulus plays itself on both sides: ``memory(env)`` on the WorkflowEnvironment and
# ``app(driver)`` on the App (``driver.app``; ``driver.advance`` moves its clock). A new client
# operation is one more class here; the drivers need no change.


class Stimulus:
    """Base of the stimuli: something from outside, played on both sides."""

    def memory(self, env: WorkflowEnvironment) -> None:
        raise NotImplementedError

    def app(self, driver: AppDriver) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class StartWorkflow(Stimulus):
    """Start ``workflow`` (a name) with ``input`` as ``instance_id`` (with a deadline
    ``timeout`` seconds on)."""

    workflow: str
    instance_id: str
    input: Any = None
    timeout: float | None = None

    def memory(self, env: WorkflowEnvironment) -> None:
        wf = env.registry.workflow(self.workflow)
        env.start(wf, self.input, instance_id=self.instance_id, timeout=self.timeout)

    def app(self, driver: AppDriver) -> None:
        driver.app.start_workflow(
            self.workflow, self.input, instance_id=self.instance_id, timeout=self.timeout
        )


@dataclass(frozen=True)
class SendEvent(Stimulus):
    """``send_event(type, data, instance_id=...)``: targeted, or broadcast when ``instance_id``
    is None."""

    type: str
    data: Any = None
    instance_id: str | None = None
    id: str = ""

    def memory(self, env: WorkflowEnvironment) -> None:
        env.send_event(self.type, self.data, instance_id=self.instance_id, id=self.id)

    def app(self, driver: AppDriver) -> None:
        driver.app.send_event(self.type, self.data, instance_id=self.instance_id, id=self.id)


@dataclass(frozen=True)
class PublishMessage(Stimulus):
    """``publish(channel, data, metadata)`` from outside any workflow."""

    channel: str
    data: Any = None
    metadata: dict[str, str] = field(default_factory=dict)

    def memory(self, env: WorkflowEnvironment) -> None:
        env.publish(self.channel, self.data, dict(self.metadata))

    def app(self, driver: AppDriver) -> None:
        driver.app.publish(self.channel, self.data, dict(self.metadata))


@dataclass(frozen=True)
class SendMessage(Stimulus):
    """``send_message(instance_id, channel, data)``: straight to one instance."""

    instance_id: str
    channel: str
    data: Any = None

    def memory(self, env: WorkflowEnvironment) -> None:
        env.send_message(self.instance_id, self.channel, self.data)

    def app(self, driver: AppDriver) -> None:
        driver.app.send_message(self.instance_id, self.channel, self.data)


@dataclass(frozen=True)
class Cancel(Stimulus):
    """``cancel(instance_id, reason)``."""

    instance_id: str
    reason: str = ""

    def memory(self, env: WorkflowEnvironment) -> None:
        env.cancel(self.instance_id, self.reason)

    def app(self, driver: AppDriver) -> None:
        driver.app.cancel(self.instance_id, self.reason)


@dataclass(frozen=True)
class Advance(Stimulus):
    """Move the clock ``seconds`` forward, firing every timer due on the way, in order."""

    seconds: float

    def memory(self, env: WorkflowEnvironment) -> None:
        env.advance(self.seconds)

    def app(self, driver: AppDriver) -> None:
        driver.advance(self.seconds)


@dataclass(frozen=True)
class DeclareQueue(Stimulus):
    """``queue(name, concurrency=, rate=)``."""

    name: str
    concurrency: int | None = None
    rate: tuple[int, float] | None = None

    def memory(self, env: WorkflowEnvironment) -> None:
        env.queue(self.name, concurrency=self.concurrency, rate=self.rate)

    def app(self, driver: AppDriver) -> None:
        driver.app.queue(self.name, concurrency=self.concurrency, rate=self.rate)


@dataclass(frozen=True)
class Enqueue(Stimulus):
    """``enqueue(queue, workflow, input, instance_id=, priority=, dedup_key=, timeout=)``; a
    ``DuplicateQueueKey`` is expected when ``duplicate`` (on both sides)."""

    queue: str
    workflow: str
    instance_id: str
    input: Any = None
    priority: int = 0
    dedup_key: str | None = None
    duplicate: bool = False
    timeout: float | None = None

    def _call(self, enqueue: Any, workflow: Any) -> None:
        try:
            enqueue(
                self.queue,
                workflow,
                self.input,
                instance_id=self.instance_id,
                priority=self.priority,
                dedup_key=self.dedup_key,
                timeout=self.timeout,
            )
        except DuplicateQueueKey:
            assert self.duplicate, f"{self.instance_id}: unexpected DuplicateQueueKey"
        else:
            assert not self.duplicate, f"{self.instance_id}: DuplicateQueueKey expected"

    def memory(self, env: WorkflowEnvironment) -> None:
        self._call(env.enqueue, env.registry.workflow(self.workflow))

    def app(self, driver: AppDriver) -> None:
        self._call(driver.app.enqueue, self.workflow)


@dataclass(frozen=True)
class Fork(Stimulus):
    """``fork(instance_id, step=, new_id=)``."""

    instance_id: str
    step: int
    new_id: str

    def memory(self, env: WorkflowEnvironment) -> None:
        env.fork(self.instance_id, step=self.step, new_id=self.new_id)

    def app(self, driver: AppDriver) -> None:
        driver.app.fork(self.instance_id, step=self.step, new_id=self.new_id)


@dataclass(frozen=True)
class Schedule(Stimulus):
    """``schedule(workflow, input, **options)`` (``cron``/``every``, ``schedule_id``, ...)."""

    workflow: str
    input: Any = None
    options: dict[str, Any] = field(default_factory=dict)

    def memory(self, env: WorkflowEnvironment) -> None:
        env.schedule(self.workflow, self.input, **self.options)

    def app(self, driver: AppDriver) -> None:
        driver.app.schedule(self.workflow, self.input, **self.options)


@dataclass(frozen=True)
class ScheduleAction(Stimulus):
    """``pause_schedule``, ``resume_schedule`` or ``trigger_schedule`` (``action``) of
    ``schedule_id``."""

    action: str
    schedule_id: str

    def memory(self, env: WorkflowEnvironment) -> None:
        getattr(env, f"{self.action}_schedule")(self.schedule_id)

    def app(self, driver: AppDriver) -> None:
        getattr(driver.app, f"{self.action}_schedule")(self.schedule_id)


@dataclass(frozen=True)
class Scenario:
    """Workflows (children included) and activities (compensations are found through the
    activities that name them), a script, and the final status every listed instance must reach
    (so a scenario cannot pass by doing nothing on every side)."""

    name: str
    workflows: tuple[Workflow[Any, Any], ...]
    script: tuple[Stimulus, ...]
    expect: dict[str, str]
    activities: tuple[Activity[Any, Any], ...] = ()

    def registry(self) -> Registry:
        registry = Registry()
        for wf in self.workflows:
            registry.add_workflow(wf)
        for act in self.activities:
            registry.add_activity(act)
        return registry


# -- outcomes ---------------------------------------------------------------------------------


@dataclass
class Instance:
    """One instance at the end of a script: its status, result/error, every run's history and
    its deadline (``App.status().deadline``; in memory, its first event's)."""

    status: str
    result: Any
    error: Any
    runs: list[list[dict[str, Any]]]
    deadline: float | None = None


@dataclass
class Outcome:
    instances: dict[str, Instance]
    outbox: list[dict[str, Any]]

    def statuses(self) -> dict[str, str]:
        return {i: inst.status for i, inst in self.instances.items()}

    def lines(self) -> list[str]:
        """The whole outcome, one line per history event (the text the diff compares)."""
        out: list[str] = []
        for instance_id, inst in sorted(self.instances.items()):
            out.append(f"== {instance_id}: {inst.status}")
            if inst.deadline is not None:
                out.append(f"   deadline {inst.deadline}")
            if inst.result is not None:
                out.append(f"   result {_dump(inst.result)}")
            if inst.error is not None:
                out.append(f"   error {_dump(inst.error)}")
            for number, events in enumerate(inst.runs, start=1):
                out.append(f"   run {number}")
                out.extend(f"     {_dump(event)}" for event in events)
        out.append("== outbox")
        out.extend(f"   {_dump(item)}" for item in self.outbox)
        return out


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


TERMINAL = ("completed", "failed", "cancelled")


def _to_plain(value: Any) -> Any:
    return msgspec.to_builtins(value)


def _error(error: Any) -> Any:
    if error is None:
        return None
    plain = _to_plain(error)
    return dict(plain) if isinstance(plain, dict) else plain


def _outbox_item(event: Any) -> dict[str, Any]:
    """What an activity put into ``ctx.outbox``: its type, data and the attributes it chose.
    The runtime fills in ``id``, ``source``, ``specversion`` and ``time`` when missing; the
    test environment records the event as sent, so those defaults are not compared."""
    if hasattr(event, "get_attributes"):
        attrs = dict(event.get_attributes())
        attrs["data"] = event.get_data()
    else:
        attrs = dict(_to_plain(event))
    return {k: v for k, v in attrs.items() if k not in ("id", "source", "specversion", "time")}


# -- in memory --------------------------------------------------------------------------------


def run_memory(scenario: Scenario) -> Outcome:
    """Play the script in a fresh :class:`WorkflowEnvironment`."""
    registry = scenario.registry()
    env = WorkflowEnvironment(registry=registry, start_time=DEFAULT_START, seed=SEED)
    for stimulus in scenario.script:
        stimulus.memory(env)
    instances = {}
    for instance_id, run in env.runs.items():
        status = env.store.read_status(instance_id)
        decision = run.decision
        runs = [[_to_plain(e) for e in h] for h in [*run.archived, run.history]]
        done = status in TERMINAL
        instances[instance_id] = Instance(
            status=status,
            result=_to_plain(decision.result) if done and status == "completed" else None,
            error=_error(decision.error) if done and status != "completed" else None,
            runs=runs,
            deadline=runs[0][0].get("deadline") if runs and runs[0] else None,
        )
    outbox = [_outbox_item(e) for e in env.outbox.sent]
    return normalise(Outcome(instances, outbox))


# -- in App, on a database --------------------------------------------------------------------


class ManualClock:
    """A clock that moves only when told to (``App(clock=...)``): the App sees the same times
    as the test environment's virtual clock."""

    def __init__(self, now: float = DEFAULT_START) -> None:
        self.now = now
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self.now

    def set(self, now: float) -> None:
        with self._lock:
            self.now = max(self.now, now)


class NotQuiescent(AssertionError):
    """The App did not settle in time (an instance kept running, or a due timer never fired)."""


class AppDriver:
    """Plays stimuli into a running App and waits until it has nothing left to do."""

    def __init__(self, app: App, clock: ManualClock, *, settle_timeout: float = 30.0) -> None:
        self.app = app
        self.clock = clock
        self.settle_timeout = settle_timeout

    def busy(self) -> str | None:
        """What the App is still doing (None: nothing)."""
        app = self.app
        worker = app.worker
        if worker is not None and worker.active_count():
            return f"{worker.active_count()} instance(s) held by the worker"
        # by the stored status: a cancelled instance reads as ``cancelling`` while it is
        # pending (before a worker claims it) or running, and must still be waited for
        runnable = app.storage._read(  # type: ignore[attr-defined]
            lambda tx: tx.one(
                "SELECT instance_id, status FROM rk_instances "
                "WHERE status IN ('pending', 'running') ORDER BY instance_id LIMIT 1"
            )
        )
        if runnable is not None:
            return f"instance {runnable['instance_id']!r} is {runnable['status']}"
        due = self.next_moment()
        if due is not None and due <= self.clock.time():
            return f"a timer or schedule due at {due} has not fired (now {self.clock.time()})"
        return None

    def next_moment(self) -> float | None:
        """When the next timer or schedule tick is due (as the test environment's clock sees
        its next moment)."""
        storage = self.app.storage
        times = [t for t in (storage.next_timer_at(), storage.next_schedule_at()) if t is not None]
        return min(times, default=None)

    def settle(self) -> None:
        """Wait until the App is idle: nothing runs and no timer is due, twice in a row; while
        instances sit in a queue, for a quarter of a second of the worker being woken (it
        admits them when it polls, so only time shows that it admitted none). Any change of
        the queued instances between two looks starts the count again."""
        deadline = time.monotonic() + self.settle_timeout
        linger = 0.25  # many polls of the worker (poll_interval 0.02), woken below as well
        quiet, since, last = 0, 0.0, None
        while True:
            state = self.busy()
            queued = [r.instance_id for r in self.app.list_instances(status="queued")]
            look = (state, queued)
            if state is None and look == last:
                quiet += 1
            else:
                quiet, since = 0, time.monotonic()
            last = look
            if queued and self.app.worker is not None:
                self.app.worker.wake()  # admit now, if the limits allow
            if quiet and (not queued or time.monotonic() - since >= linger):
                return
            if time.monotonic() > deadline:
                raise NotQuiescent(f"the App did not settle in {self.settle_timeout} s: {state}")
            time.sleep(0.003)

    def advance(self, seconds: float) -> None:
        """As ``WorkflowEnvironment.advance``: jump from timer to timer up to the target, letting
        the App fire each and settle before the next."""
        target = self.clock.time() + seconds
        self.settle()
        while (at := self.next_moment()) is not None and at <= target:
            self.clock.set(at)
            self.settle()
        self.clock.set(target)

    def play(self, stimulus: Stimulus) -> None:
        stimulus.app(self)
        self.settle()


def run_app(scenario: Scenario, database: str, **app_options: Any) -> Outcome:
    """Play the script in an App on ``database`` (an empty one) with one worker slot, so the
    instances run one at a time as in the test environment, on a :class:`ManualClock` and with
    the test environment's seeded ``Uuid``/``Random`` values."""
    clock = ManualClock()
    options: dict[str, Any] = {
        "concurrency": 1,
        "poll_interval": 0.02,
        "values": SeededValues(SEED),
    }
    options.update(app_options)
    app = App(database, registry=scenario.registry(), clock=clock, **options)
    with app:
        driver = AppDriver(app, clock)
        for stimulus in scenario.script:
            driver.play(stimulus)
        instances = {r.instance_id: _app_instance(app, r) for r in app.list_instances(limit=10_000)}
        delivered: list[dict[str, Any]] = []
        relay = OutboxRelay(app.storage, delivered.append, clock=clock)
        while relay.run_once():
            pass
    outbox = [_outbox_item(e) for e in delivered]
    return normalise(Outcome(instances, outbox))


def _app_instance(app: App, record: Any) -> Instance:
    iid = record.instance_id
    runs = [[_to_plain(e) for e in app.history(iid, run=n)] for n in range(1, record.run)]
    runs.append([_to_plain(e) for e in app.history(iid)])
    done = record.status in TERMINAL
    return Instance(
        status=record.status,
        result=record.output if done and record.status == "completed" else None,
        error=_error(record.error) if done and record.status != "completed" else None,
        runs=runs,
        deadline=record.deadline,
    )


# -- normalising and comparing ----------------------------------------------------------------


def normalise(outcome: Outcome) -> Outcome:
    """Take out what legitimately differs between runs: timestamps are made offsets from the
    script's start (both sides run on the same clock, so they are compared, not dropped);
    channel message ids, numbered by each database, are renamed in order of first appearance
    (``<message 1>``); an error's traceback keeps its last line (type and message), not the call
    stack of the executor that ran it. Uuid and Random values are not touched: both sides draw
    them from the same seeded generator."""
    ids: dict[Any, str] = {}
    for _, inst in sorted(outcome.instances.items()):
        for events in inst.runs:
            for event in events:
                message = event.get("message")
                if event.get("e") == "MessageReceived" and isinstance(message, dict):
                    ids.setdefault(message.get("id"), f"<message {len(ids) + 1}>")
    instances = {
        iid: Instance(
            status=inst.status,
            result=inst.result,
            error=_short_traceback(inst.error),
            runs=[[_event(e, ids) for e in events] for events in inst.runs],
            deadline=None if inst.deadline is None else round(inst.deadline - DEFAULT_START, 6),
        )
        for iid, inst in outcome.instances.items()
    }
    return Outcome(instances, outcome.outbox)


def _event(event: dict[str, Any], message_ids: dict[Any, str]) -> dict[str, Any]:
    out = {k: (round(v - DEFAULT_START, 6) if k == "at" else v) for k, v in event.items()}
    message = out.get("message")
    if out.get("e") == "MessageReceived" and isinstance(message, dict):
        out["message"] = {**message, "id": message_ids[message.get("id")]}
    if isinstance(out.get("error"), dict):
        out["error"] = _short_traceback(out["error"])
    return out


def _short_traceback(error: Any) -> Any:
    if isinstance(error, dict) and error.get("traceback"):
        lines = [line for line in str(error["traceback"]).splitlines() if line.strip()]
        return {**error, "traceback": lines[-1] if lines else ""}
    return error


def diff(expected: Outcome, actual: Outcome, *, labels: Sequence[str] = ("memory", "app")) -> str:
    """A unified diff of two outcomes, one history event per line ('' when equal)."""
    lines = difflib.unified_diff(
        expected.lines(), actual.lines(), fromfile=labels[0], tofile=labels[1], lineterm="", n=4
    )
    return "\n".join(lines)


def assert_same(memory: Outcome, other: Outcome, backend: str) -> None:
    """Fail with a readable diff unless both outcomes are identical."""
    text = diff(memory, other, labels=("memory", backend))
    if text:
        raise AssertionError(f"memory and {backend} disagree:\n{text}")


def check_expectations(scenario: Scenario, outcome: Outcome) -> None:
    """The scenario reached the statuses it was written for (on the memory side)."""
    got = {
        iid: outcome.instances[iid].status if iid in outcome.instances else "missing"
        for iid in scenario.expect
    }
    assert got == scenario.expect, f"{scenario.name}: expected {scenario.expect}, got {got}"

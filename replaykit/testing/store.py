"""The in-memory store of the test environment: the database's delivery rules, kept in dicts.

It follows the SQL adapters rule for rule (``storage_adapters/sql_commit.py`` and
``sql_delivery.py``), so a workflow tested in memory meets the same behaviour as in production:

* a step's writes apply in the order of :class:`~replaykit.storage.StepCommit`: cancelled steps,
  timers (one per step), subscriptions, children (one per id), messages, then waits, then the
  status; a wait takes what is already available instead of being stored;
* events: kept per target, or broadcast to the instances that existed when they arrived; each
  instance takes an event at most once, into its lowest waiting step whose ``match`` fits
  (:func:`~replaykit.core.event_match.data_matches`); ``(source, id)`` is stored once;
* channel messages: a published message goes to every *broadcast* subscriber (each from its
  subscription on, through a cursor) and to exactly *one* *competing* subscriber (the oldest
  waiting one now, else whichever takes it first, including later subscribers); a message sent
  to an instance is for that instance only, and is taken before subscribed ones;
* a timeout fires only while its wait exists; a finished instance keeps no timers, waits or
  subscriptions; a child's end goes to its waiting parent's inbox unless the parent has ended.

Instances receive history events in an *inbox*; ``runnable`` holds the instances to run next, in
the order a database's worker claims them: by the time they became runnable, then by id (the
claim's ``ORDER BY updated_at, instance_id``). So instances woken at the same moment, by one
broadcast or by timers due together, run in id order on every side, whatever order their waits
or timers were registered in.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..core.effects import (
    DEADLINE_STEP,
    CancelChild,
    CreateChild,
    Finish,
    RegisterWait,
    Send,
    SetTimer,
    Subscription,
    admitted_start,
)
from ..core.errors import WorkflowNotFound
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
from .queues import MemoryQueues

TERMINAL = frozenset({"completed", "failed", "cancelled"})


@dataclass
class Wait:
    """A stored wait: for an event of type ``key`` (``kind="event"``) or a message on ``key``."""

    step: int
    kind: str
    key: str
    match: dict[str, Any] | None
    since: float

    def describe(self) -> str:
        return f"{'WaitEvent' if self.kind == 'event' else 'Receive'} {self.key!r}"


@dataclass
class MemoryStep:
    """The writes of one step, applied together by :meth:`MemoryStore.commit` (what a
    :class:`~replaykit.storage.StepCommit` is to a database)."""

    cancel_steps: list[int] = field(default_factory=list)
    timers: list[SetTimer] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    children: list[CreateChild] = field(default_factory=list)
    cancels: list[CancelChild] = field(default_factory=list)
    sends: list[Send] = field(default_factory=list)
    waits: list[RegisterWait] = field(default_factory=list)
    status: str = "running"  # "running" (more activities to run) or "waiting"
    finish: Finish | None = None

    def drop_step(self, step: int) -> None:
        self.timers = [t for t in self.timers if t.step != step]
        self.waits = [w for w in self.waits if w.step != step]
        self.cancel_steps.append(step)


@dataclass
class _Instance:
    status: str
    floor: int  # the newest event id when it was created: later broadcasts only
    parent: str | None = None
    parent_step: int | None = None  # the parent's step that waits for this child's result
    inbox: deque[Event] = field(default_factory=deque)
    waits: dict[int, Wait] = field(default_factory=dict)
    subscriptions: dict[str, list[Any]] = field(default_factory=dict)  # channel: [mode, cursor]
    #: a cancellation was asked for (``cancel()``, its deadline, its parent): until it ends it
    #: reads ``cancelling`` (the database's ``cancel_requested_at``)
    cancel_requested: bool = False


@dataclass
class _Message:
    message: Message
    target: str | None
    claimed_by: str | None = None


class MemoryStore:
    """Instances, inboxes, waits, timers, events and messages of one test environment."""

    def __init__(self) -> None:
        self.instances: dict[str, _Instance] = {}
        self.runnable: list[tuple[float, str]] = []  # a heap of (since, instance id)
        self.events: list[tuple[int, EventData, str | None]] = []
        self.messages: list[_Message] = []
        self._deliveries: set[tuple[str, int]] = set()
        self._event_keys: set[tuple[str, str]] = set()
        self._timers: dict[tuple[str, int], tuple[int, SetTimer]] = {}
        self._heap: list[tuple[float, int, str, int]] = []
        self._seq = 0
        self.queues = MemoryQueues()

    # -- instances ------------------------------------------------------------------------------

    def create(
        self,
        instance_id: str,
        started: Event | None,
        *,
        parent: str | None = None,
        parent_step: int | None = None,
        deadline: SetTimer | None = None,
    ) -> bool:
        """A new pending instance whose inbox holds ``started`` (None: a running instance whose
        history the caller already has), with its ``deadline`` timer; False if the id exists."""
        if instance_id in self.instances:
            return False
        if deadline is not None:
            self._add_timer(instance_id, deadline)
        floor = self.events[-1][0] if self.events else 0
        if started is None:
            self.instances[instance_id] = _Instance("running", floor, parent, parent_step)
            return True
        inbox = deque([started])
        self.instances[instance_id] = _Instance("pending", floor, parent, parent_step, inbox)
        self._runnable(instance_id, started.at)
        return True

    def enqueue(
        self,
        instance_id: str,
        started: WorkflowStarted,
        queue: str,
        priority: int,
        dedup_key: str | None,
        timeout: float | None = None,
    ) -> bool:
        """A new ``queued`` instance (runnable once its queue admits it, with a deadline
        ``timeout`` seconds after that); False if the id exists. Raises UnknownQueue and
        DuplicateQueueKey as ``Storage.enqueue`` does."""
        if instance_id in self.instances:
            return False
        self.queues.check(instance_id, queue, dedup_key, self.status)
        floor = self.events[-1][0] if self.events else 0
        self.instances[instance_id] = _Instance("queued", floor, inbox=deque([started]))
        self.queues.add(instance_id, queue, priority, dedup_key, timeout)
        return True

    def admit(self, now: float) -> bool:
        """The admission step (``Storage.admit``): queued instances the limits allow become
        pending, the deadline clock of those enqueued with a timeout starts; True if any
        did."""
        admitted = self.queues.admit(now, self.status)
        for instance_id in admitted:
            instance = self.instances[instance_id]
            instance.status = "pending"
            timeout = self.queues.members[instance_id].timeout
            if timeout is not None:
                first = instance.inbox[0]
                assert isinstance(first, WorkflowStarted)
                instance.inbox[0], timer = admitted_start(first, timeout, now)
                self._add_timer(instance_id, timer)
            self._runnable(instance_id, now)
        return bool(admitted)

    def _runnable(self, instance_id: str, now: float) -> None:
        heapq.heappush(self.runnable, (now, instance_id))

    def block(self, instance_id: str) -> None:
        """Replay broke: nothing runs or wakes the instance (its inbox still fills)."""
        self.instances[instance_id].status = "blocked"

    def hold(self, instance_id: str) -> None:
        """A blocked instance resumed from its history (with fixed code) runs again."""
        instance = self.instances[instance_id]
        if instance.status == "blocked":
            instance.status = "running"

    def next_runnable(self) -> str | None:
        """The next pending instance, now running (None: nothing to run)."""
        while self.runnable:
            _, instance_id = heapq.heappop(self.runnable)
            instance = self.instances[instance_id]
            if instance.status == "pending":
                instance.status = "running"
                return instance_id
        return None

    def status(self, instance_id: str) -> str:
        """The stored status (what queues count)."""
        return self.instances[instance_id].status

    def read_status(self, instance_id: str) -> str:
        """The status the instance reads as (``App.status``): ``cancelling`` while a
        cancellation was asked for and it has not ended."""
        instance = self.instances[instance_id]
        return cancelling(instance, instance.status)

    def inbox(self, instance_id: str) -> deque[Event]:
        return self.instances[instance_id].inbox

    def waits(self, instance_id: str) -> dict[int, Wait]:
        return self.instances[instance_id].waits

    def registered_steps(self, instance_id: str) -> list[int]:
        """The steps of the instance's timers and waits and of its running children whose result
        it waits for (``Storage.registered_steps``)."""
        steps = {step for owner, step in self._timers if owner == instance_id}
        steps |= set(self.instances[instance_id].waits)
        steps |= {
            child.parent_step
            for child in self.instances.values()
            if child.parent == instance_id
            and child.parent_step is not None
            and child.status not in TERMINAL
        }
        return sorted(steps)

    def subscriptions(self, instance_id: str) -> dict[str, str]:
        return {ch: sub[0] for ch, sub in self.instances[instance_id].subscriptions.items()}

    def deliver(self, instance_id: str, event: Event, now: float) -> None:
        """Put ``event`` into the inbox and wake the instance if it waits."""
        instance = self.instances[instance_id]
        instance.inbox.append(event)
        if instance.status == "waiting":
            instance.status = "pending"
            self._runnable(instance_id, now)

    def cancel(self, instance_id: str, reason: str, now: float) -> None:
        instance = self._get(instance_id)
        if instance.status not in TERMINAL:
            self.deliver(instance_id, CancelRequested(reason=reason, at=now), now)
            instance.cancel_requested = True
        if instance.status == "queued":  # not admitted yet: it leaves its queue to end now
            instance.status = "pending"
            self._runnable(instance_id, now)

    def _get(self, instance_id: str) -> _Instance:
        instance = self.instances.get(instance_id)
        if instance is None:
            raise WorkflowNotFound(f"no workflow instance with id {instance_id!r}")
        return instance

    # -- a step ---------------------------------------------------------------------------------

    def commit(self, instance_id: str, step: MemoryStep, now: float) -> bool:
        """Apply ``step``; True when the instance is released (it waits, or it ended)."""
        instance = self.instances[instance_id]
        for cancelled in step.cancel_steps:
            self._timers.pop((instance_id, cancelled), None)
            instance.waits.pop(cancelled, None)
        for timer in step.timers:
            self._add_timer(instance_id, timer)
        for sub in step.subscriptions:
            self._subscribe(instance, sub)
        for child in step.children:
            self.create(
                child.child_id,
                child.started,
                parent=instance_id,
                parent_step=child.parent_step,
                deadline=child.deadline,
            )
        for cancel in step.cancels:
            found = self.instances.get(cancel.child_id)
            if found is not None and found.parent == instance_id and found.status not in TERMINAL:
                self.deliver(cancel.child_id, cancel.event, now)
                found.cancel_requested = True
        for send in step.sends:
            self.publish(send, sender=instance_id, now=now)
        for wait in step.waits:
            self._register_wait(instance_id, wait, now)
        if step.finish is not None:
            self._finish(instance_id, step.finish, now)
            return True
        if step.status == "running" or instance.inbox:
            return False
        instance.status = "waiting"
        return True

    def _finish(self, instance_id: str, finish: Finish, now: float) -> None:
        instance = self.instances[instance_id]
        self._drop_timers(instance_id, keep_deadline=finish.next_run is not None)
        instance.waits.clear()
        if finish.next_run is not None:  # Recur: the next run starts; only cancel requests stay
            kept = [e for e in instance.inbox if isinstance(e, CancelRequested)]
            instance.inbox = deque([finish.next_run, *kept])
            instance.status = "pending"
            self._runnable(instance_id, now)
            return
        instance.status = finish.status
        instance.subscriptions.clear()
        parent_id, event = instance.parent, finish.parent_event
        alive = parent_id is not None and self.instances[parent_id].status not in TERMINAL
        if event is not None and parent_id is not None and alive:
            self.deliver(parent_id, event, now)

    # -- waits and timers -----------------------------------------------------------------------

    def _register_wait(self, instance_id: str, wait: RegisterWait, now: float) -> None:
        waits = self.instances[instance_id].waits
        if wait.step in waits:
            return
        if wait.kind == "event":
            found = self._available_event(instance_id, wait, now)
        else:
            found = self._available_message(instance_id, wait, now)
        if found is not None:
            self._timers.pop((instance_id, wait.step), None)
            self.instances[instance_id].inbox.append(found)
            return
        waits[wait.step] = Wait(wait.step, wait.kind, wait.key, wait.match, now)

    def _take_wait(self, instance_id: str, step: int) -> bool:
        self._timers.pop((instance_id, step), None)
        return self.instances[instance_id].waits.pop(step, None) is not None

    def _add_timer(self, instance_id: str, timer: SetTimer) -> None:
        key = (instance_id, timer.step)
        if key in self._timers:
            return
        self._seq += 1
        self._timers[key] = (self._seq, timer)
        heapq.heappush(self._heap, (timer.fire_at, self._seq, instance_id, timer.step))

    def _drop_timers(self, instance_id: str, *, keep_deadline: bool = False) -> None:
        """Drop the instance's timers (but its deadline timer with ``keep_deadline``: a
        ``Recur`` keeps the deadline of the instance)."""
        for key in [k for k in self._timers if k[0] == instance_id]:
            if not (keep_deadline and key[1] == DEADLINE_STEP):
                del self._timers[key]

    def next_timer_at(self) -> float | None:
        """When the earliest timer is due, or a queue's rate limit lets it admit again (None:
        neither)."""
        retry = self.queues.retry_at
        while self._heap:
            at, seq, instance_id, step = self._heap[0]
            live = self._timers.get((instance_id, step))
            if live is not None and live[0] == seq:
                return at if retry is None else min(at, retry)
            heapq.heappop(self._heap)
        return retry

    def fire_due_timers(self, now: float) -> bool:
        """Deliver every timer due by ``now``, each once, and admit what a rate limit held
        back until then; True if any was delivered or admitted."""
        fired = False
        retry = self.queues.retry_at
        if retry is not None and retry <= now:
            self.queues.retry_at = None
            fired = self.admit(now)
        while (at := self.next_timer_at()) is not None and at <= now:
            _, _, instance_id, step = heapq.heappop(self._heap)
            _, timer = self._timers.pop((instance_id, step))
            instance = self.instances[instance_id]
            if instance.status in TERMINAL:
                continue
            if timer.is_timeout and instance.waits.pop(step, None) is None:
                continue  # the wait was satisfied first: the timeout is void
            self.deliver(instance_id, timer.event, now)
            if step == DEADLINE_STEP:  # a cancellation
                instance.cancel_requested = True
            fired = True
        return fired

    # -- events ---------------------------------------------------------------------------------

    def send_event(self, event: EventData, target: str | None, now: float) -> bool:
        """Store ``event`` and deliver it to the waiting instances; False for a duplicate."""
        if target is not None:
            self._get(target)
        if event.id:
            if (event.source, event.id) in self._event_keys:
                return False
            self._event_keys.add((event.source, event.id))
        event_id = len(self.events) + 1
        self.events.append((event_id, event, target))
        receivers = [target] if target is not None else sorted(self.instances)
        for instance_id in receivers:
            instance = self.instances[instance_id]
            if target is None and instance.floor >= event_id:
                continue
            for step in sorted(instance.waits):
                wait = instance.waits[step]
                if (
                    wait.kind == "event"
                    and wait.key == event.type
                    and data_matches(event.data, wait.match)
                    and self._take_wait(instance_id, step)
                ):
                    self._deliveries.add((instance_id, event_id))
                    self.deliver(instance_id, _received(step, event, now), now)
                    break
        return True

    def _available_event(self, instance_id: str, wait: RegisterWait, now: float) -> Event | None:
        floor = self.instances[instance_id].floor
        for event_id, event, target in self.events:
            if event.type != wait.key or (instance_id, event_id) in self._deliveries:
                continue
            visible = target == instance_id or (target is None and event_id > floor)
            if visible and data_matches(event.data, wait.match):
                self._deliveries.add((instance_id, event_id))
                return _received(wait.step, event, now)
        return None

    # -- channel messages -----------------------------------------------------------------------

    def publish(self, send: Send, *, sender: str | None, now: float) -> int:
        """Store a message and deliver it to the waiting receivers; its id."""
        message = Message(
            channel=send.channel,
            data=send.data,
            metadata=dict(send.metadata),
            id=len(self.messages) + 1,
            sender=sender,
        )
        stored = _Message(message, send.target)
        self.messages.append(stored)
        if send.target is not None:
            if send.target in self.instances:
                self._hand_over(stored, [send.target], now, claim=True)
        else:
            self._hand_over(stored, self._waiting_subscribers(send.channel, "broadcast"), now)
            competing = self._waiting_subscribers(send.channel, "competing")
            self._hand_over(stored, competing, now, claim=True)
        return message.id

    def _waiting_subscribers(self, channel: str, mode: str) -> list[str]:
        """Subscribers in ``mode`` with a message wait on ``channel``, oldest wait first."""
        found = []
        for instance_id, instance in self.instances.items():
            sub = instance.subscriptions.get(channel)
            if sub is None or sub[0] != mode:
                continue
            since = [w.since for w in instance.waits.values() if _waits_for(w, channel)]
            if since:
                found.append((min(since), instance_id))
        return [instance_id for _, instance_id in sorted(found)]

    def _hand_over(
        self, stored: _Message, receivers: list[str], now: float, *, claim: bool = False
    ) -> None:
        """Give the message to each receiver's lowest wait on its channel (to the first that
        takes it when ``claim``)."""
        channel = stored.message.channel
        for instance_id in receivers:
            waits = self.instances[instance_id].waits
            steps = sorted(s for s, w in waits.items() if _waits_for(w, channel))
            step = next((s for s in steps if self._take_wait(instance_id, s)), None)
            if step is None:
                continue
            if claim:
                stored.claimed_by = instance_id
            else:
                self._advance(instance_id, channel, stored.message.id)
            self.deliver(instance_id, _message_received(step, stored.message, now), now)
            if claim:
                return

    def _available_message(self, instance_id: str, wait: RegisterWait, now: float) -> Event | None:
        channel = wait.key
        on_channel = [m for m in self.messages if m.message.channel == channel]
        direct = [m for m in on_channel if m.target == instance_id and m.claimed_by is None]
        found: _Message | None = direct[0] if direct else None
        if found is not None:
            found.claimed_by = instance_id
            return _message_received(wait.step, found.message, now)
        sub = self.instances[instance_id].subscriptions.get(channel)
        if sub is None:
            return None
        published = [m for m in on_channel if m.target is None]
        if sub[0] == "broadcast":
            found = next((m for m in published if m.message.id > sub[1]), None)
            if found is not None:
                self._advance(instance_id, channel, found.message.id)
        else:
            found = next((m for m in published if m.claimed_by is None), None)
            if found is not None:
                found.claimed_by = instance_id
        return None if found is None else _message_received(wait.step, found.message, now)

    def _subscribe(self, instance: _Instance, sub: Subscription) -> None:
        if not sub.subscribe:
            instance.subscriptions.pop(sub.channel, None)
        elif sub.channel in instance.subscriptions:
            instance.subscriptions[sub.channel][0] = sub.mode
        else:
            ids = [m.message.id for m in self.messages if m.message.channel == sub.channel]
            instance.subscriptions[sub.channel] = [sub.mode, max(ids, default=0)]

    def _advance(self, instance_id: str, channel: str, message_id: int) -> None:
        sub = self.instances[instance_id].subscriptions.get(channel)
        if sub is not None and sub[1] < message_id:
            sub[1] = message_id


def cancelling(instance: _Instance, status: str) -> str:
    """``status`` as the instance reads: ``cancelling`` while a cancellation was asked for and
    it has not ended (nor is blocked)."""
    if instance.cancel_requested and status not in TERMINAL and status != "blocked":
        return "cancelling"
    return status


def _waits_for(wait: Wait, channel: str) -> bool:
    return wait.kind == "message" and wait.key == channel


def _received(step: int, event: EventData, now: float) -> Event:
    return EventReceived(step=step, name=event.type, event=event, at=now)


def _message_received(step: int, message: Message, now: float) -> Event:
    return MessageReceived(step=step, name=message.channel, message=message, at=now)


__all__ = ["MemoryStep", "MemoryStore", "Wait", "cancelling"]

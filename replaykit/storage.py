"""The storage protocol every adapter implements, and the records it reads and writes.

The runtime never writes SQL; it hands the adapter whole *units of work* (a :class:`StepCommit`)
that the adapter applies in one transaction. Adapters live in ``storage_adapters`` (sqlite,
postgres, mysql) and are checked by one contract suite in ``tests/storage``.

Vocabulary of statuses (``InstanceRecord.status``):

* ``queued``    started on a queue and not admitted yet: no worker can claim it until an
                admission step (:meth:`Storage.admit`) makes it ``pending``
* ``pending``   runnable, no worker holds it (new, or woken by a timer/event/message/child/cancel)
* ``running``   a worker holds it under a lease (``lease_owner``, ``lease_expires_at``)
* ``waiting``   parked on timers, event waits or message waits; holds no worker
* ``blocked``   its replay broke (``NonDeterminismError``, in ``error``); holds no worker, is not
                claimed and not woken until :meth:`Storage.retry_blocked` makes it ``pending``
* ``completed`` / ``failed`` / ``cancelled``  terminal

and, as *read* (never written by a commit):

* ``cancelling``  ``cancel()`` was asked for and the instance has not ended yet (its stored status
                  is pending, running or waiting; ``cancel_requested_at`` is set)

An instance is *claimable* when it is ``pending``, or ``running`` with an expired lease (a crashed
worker); claiming sets the lease: ``lease_owner``, a new random ``lease_token`` and
``lease_expires_at``. A step commits only while its owner still holds the lease *under the token
it was claimed with*, so two claims of one instance by one worker are told apart. Leases are
the fallback: a worker's death is seen at once through its liveness hold
(:meth:`Storage.register_worker`), and its instances are released to be claimed again
(:meth:`Storage.reap_dead_workers`).

Lease ends are counted from when the write happens, not from ``now``: an adapter adds to
``now`` the time the call waited (for a connection, the write lock, a row lock) before writing,
so a commit that queued longer than the lease does not write a lease that has already ended.

Everything that wakes an instance puts a history event in its *inbox* and, if it is
``waiting``, makes it ``pending``; the worker that next holds the instance moves inbox events
into history (``StepCommit.consumed_inbox``).

Times are POSIX seconds (floats) taken from the runtime's clock.

Optional capability: an adapter may offer ``send_event_and_claim(event, *, now, owner,
lease_seconds, workflows) -> (stored, Handoff | None)``, delivering a targeted event and leasing
the instance it wakes to ``owner`` (when its workflow is one of ``workflows``) in the same
transaction, and returning the woken instance's record,
history and inbox read after the lease was taken; the App uses it when it has a free worker slot
(the PostgreSQL adapter has it).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol, get_args, runtime_checkable

import msgspec

from .core.history import encode_event
from .core.queues import QueueSpec, QueueStats
from .core.schedules import Schedule, started_event

InstanceStatus = Literal[
    "queued",
    "pending",
    "running",
    "waiting",
    "blocked",
    "completed",
    "failed",
    "cancelled",
    "cancelling",
]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
#: every status an instance can read as, in the order listings show them
INSTANCE_STATUSES: tuple[str, ...] = get_args(InstanceStatus)


class InstanceRecord(msgspec.Struct, kw_only=True):
    """One workflow instance (its current run)."""

    instance_id: str
    workflow: str
    status: InstanceStatus
    input: Any = None
    output: Any = None
    error: Any = None  # ErrorInfo as builtins, for failed/cancelled
    run: int = 1
    continued_from: str | None = None
    parent_id: str | None = None
    parent_step: int | None = None  # set when the parent waits for this child's result
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    history_len: int = 0
    queue: str | None = None  # the queue it was started on
    priority: int = 0  # on its queue: higher is admitted first
    dedup_key: str | None = None  # unique among the queue's unfinished instances
    admitted_at: float | None = None  # when its queue admitted it (its start)
    #: new for every claim: the lease a step must still hold to commit (``StepCommit.lease_token``)
    lease_token: str | None = None
    #: the version of the code that started the current run (``Workflow.version``; None for an
    #: instance stored before versions were recorded)
    version: str | None = None
    #: a fork (``App.fork``): the instance whose history it copied, and the step it re-runs from
    forked_from: str | None = None
    forked_step: int | None = None
    deadline: float | None = None  # POSIX time by which it must end (``timeout=``)
    #: when a cancellation was first asked for: ``cancel()``, its deadline passing, its parent
    #: cancelling it; while it has not ended it reads ``cancelling``
    cancel_requested_at: float | None = None
    #: the ``timeout=`` (seconds) of a start on a queue: its ``deadline`` is set to
    #: ``admitted_at + timeout`` when its queue admits it
    timeout: float | None = None


class AdmitResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one admission step did: the ids it made ``pending``, and the earliest time a
    rate limit lets a queue with instances still queued admit again (None: no such wait)."""

    admitted: list[str] = []
    retry_at: float | None = None


def scheduled_instance(
    schedule: Schedule, instance_id: str, now: float
) -> tuple[InstanceRecord, bytes]:
    """The pending instance a schedule starts (a tick's or a trigger's) and its first event,
    as ``Storage.create_instance`` takes them."""
    record = InstanceRecord(
        instance_id=instance_id,
        workflow=schedule.workflow,
        status="pending",
        input=schedule.spec.input,
        created_at=now,
        updated_at=now,
        history_len=1,
    )
    return record, encode_event(started_event(schedule, instance_id, now))


class InboxItem(msgspec.Struct, frozen=True, kw_only=True):
    """A history event waiting to be moved into an instance's history (``event`` is JSON bytes)."""

    id: int
    instance_id: str
    event: bytes


class Handoff(msgspec.Struct, frozen=True, kw_only=True):
    """An instance leased to a local worker by ``send_event_and_claim``, with what the worker
    needs to resume it (what ``load_run`` would return), read under the new lease."""

    record: InstanceRecord
    history: list[bytes]
    inbox: list[InboxItem]


class TimerSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A durable timer: at ``fire_at`` the adapter puts ``event`` (JSON bytes of a history event)
    into the instance's inbox. For a timeout (``is_timeout``), it fires only if the wait at the same
    step still exists, and deletes that wait."""

    step: int
    fire_at: float
    event: bytes
    is_timeout: bool = False


class WaitSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A wait for an event (``kind="event"``, ``key`` = event type, optional ``match`` on data keys)
    or a channel message (``kind="message"``, ``key`` = channel) at ``step``."""

    step: int
    kind: Literal["event", "message"]
    key: str
    match: dict[str, Any] | None = None


class PublishSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A channel message to store and deliver (``target`` set: sent to that instance only)."""

    channel: str
    data: Any = None
    metadata: dict[str, str] = {}
    sender: str | None = None
    target: str | None = None


class SubscriptionSpec(msgspec.Struct, frozen=True, kw_only=True):
    channel: str
    mode: Literal["broadcast", "competing"] = "broadcast"
    subscribe: bool = True  # False: unsubscribe


class ChildSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A child instance to create (idempotent on ``instance_id``)."""

    instance_id: str
    workflow: str
    input: Any
    started_event: bytes  # JSON of the child's WorkflowStarted event
    parent_step: int | None  # None: the parent does not wait for the result
    version: str | None = None  # the version of the child workflow's code
    deadline: TimerSpec | None = None  # the child's deadline timer, stored with it


class CancelSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Cancel ``instance_id``, a child of the committing instance, unless it has ended: put
    ``event`` (JSON of a CancelRequested) into its inbox and wake it."""

    instance_id: str
    event: bytes


class OutboxSpec(msgspec.Struct, frozen=True, kw_only=True):
    """An outbox message: a CloudEvent (attributes + data) for the relay to deliver."""

    event: dict[str, Any]
    destination: str | None = None


class OutboxRecord(msgspec.Struct, kw_only=True):
    id: int
    instance_id: str | None
    event: dict[str, Any]
    destination: str | None
    attempts: int = 0
    status: Literal["pending", "delivered", "failed"] = "pending"
    last_error: str | None = None
    next_attempt_at: float = 0.0


class StoredEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An external event (CloudEvent) stored by ``send_event``."""

    type: str
    data: Any = None
    source: str = ""
    id: str = ""
    subject: str | None = None
    time: str | None = None
    extensions: dict[str, Any] = {}
    target: str | None = None  # instance id, or None for every instance waiting on ``type``


class StepCommit(msgspec.Struct, kw_only=True):
    """Everything one step of a workflow writes, applied atomically by :meth:`Storage.commit`.

    The adapter, in one transaction and in this order:

    1. checks that ``owner`` still holds the lease on ``instance_id`` under ``lease_token`` (else
       raises ``LeaseLost`` and writes nothing), and extends it: to ``lease_seconds`` after the
       moment of the write when ``lease_seconds`` is set, else to ``lease_expires_at`` (moved
       later by any time the write waited for the instance's row);
    2. deletes the inbox items ``consumed_inbox`` and appends ``events`` (JSON bytes, in order) to
       history at positions ``history_len``, ``history_len + 1``, ...;
    3. deletes timers and waits of ``cancel_steps``; inserts ``timers`` (ignoring one that already
       exists for the same step); applies ``subscriptions``; inserts ``children`` (ignoring existing
       ids) as ``pending``; cancels ``cancel_children`` (only children of this instance that have
       not ended); stores and delivers ``publishes``; inserts ``outbox`` rows;
    4. registers ``waits`` (ignoring one that already exists for the same step): for each, if a
       matching event/message is already available (see ``send_event``/``publish``), consumes it
       and puts the EventReceived/MessageReceived into the instance's *inbox* (durable: a crash
       before the next commit loses nothing) instead of storing the wait, and deletes the step's
       timeout timer;
    5. sets the status: a terminal ``status`` stores ``output``/``error``, releases the lease, and,
       if the instance has a waiting parent (``parent_step``), puts a ChildCompleted/ChildFailed
       event (``parent_event``) into the parent's inbox and wakes it. ``status="waiting"``
       releases the lease unless inbox items exist that were not in ``consumed_inbox`` (including
       those step 4 just delivered) — then the instance stays ``running`` and the result lists
       them in ``inbox``.
       ``status="running"`` keeps the lease. ``recur`` (continue-as-new) moves the history to the
       archive under the old run number, increments ``run``, sets ``input`` to ``recur_input``,
       writes ``recur_started`` as history position 0, sets ``version`` to ``recur_version``
       (when given), and makes the instance ``pending``; it drops the run's timers and waits
       but keeps the deadline timer (step 0).
    """

    instance_id: str
    owner: str
    lease_expires_at: float
    history_len: int
    #: the token of the claim the step runs under (``InstanceRecord.lease_token``)
    lease_token: str | None = None
    #: extend the lease this long past the write (None: to ``lease_expires_at``)
    lease_seconds: float | None = None
    events: list[bytes] = []
    consumed_inbox: list[int] = []
    status: InstanceStatus = "running"
    output: Any = None
    error: Any = None
    timers: list[TimerSpec] = []
    waits: list[WaitSpec] = []
    cancel_steps: list[int] = []
    publishes: list[PublishSpec] = []
    subscriptions: list[SubscriptionSpec] = []
    children: list[ChildSpec] = []
    cancel_children: list[CancelSpec] = []
    outbox: list[OutboxSpec] = []
    parent_event: bytes | None = None
    recur: bool = False
    recur_input: Any = None
    recur_started: bytes | None = None
    recur_version: str | None = None  # the code version of the next run (None: unchanged)
    now: float = 0.0
    #: the instance has no timer, wait or subscription stored (its executor started it, set
    #: none and it has no deadline): a terminal commit need not look for them to delete
    clean: bool = False


class CommitResult(msgspec.Struct, kw_only=True):
    inbox: list[InboxItem] = []  # unconsumed inbox items seen when asked to wait
    released: bool = False  # the lease was released (waiting or terminal)


class WorkerHold(Protocol):
    """A worker's liveness hold (:meth:`Storage.register_worker`): held while the worker lives."""

    worker_id: str

    def alive(self) -> bool:
        """Whether the hold is intact (its dedicated connection answers). Once False, the worker
        is taken for dead by the others: it must commit nothing more under ``worker_id``."""

    def release(self) -> None:
        """Unregister the worker and give the hold up (a clean stop). A hold already lost stays
        registered, so that the others take over its instances. Idempotent."""


class Transaction(Protocol):
    """The transaction of one transactional activity: what ``Storage.transaction()`` gives.

    It is *lazy*: no database transaction is begun until the activity first reads ``session``;
    an activity that never does holds no connection and no lock, and its step is committed by
    :meth:`commit` through the adapter's ordinary path (the same as :meth:`Storage.commit`).
    It ends exactly once, by an explicit outcome:

    * :meth:`commit` records the step, atomically with everything done through ``session``,
      and returns the real :class:`CommitResult` once it is durable;
    * :meth:`rollback` discards everything done through ``session`` and records nothing.

    Leaving the ``with`` block without either (an exception, or an early return) rolls back.
    After the end, ``session``, ``commit`` and ``rollback`` raise ``StorageError``.
    """

    @property
    def session(self) -> Any:
        """The adapter's connection/cursor inside the transaction (begun on first use), handed
        to the user as ``ctx.session``."""

    def commit(self, commit: StepCommit) -> CommitResult:
        """Apply ``commit`` (same rules as :meth:`Storage.commit`) together with the session's
        writes and commit; ``LeaseLost``/``StorageError`` roll everything back."""

    def rollback(self) -> None:
        """Discard the session's writes; record no step."""


@runtime_checkable
class Storage(Protocol):
    """What the runtime needs from a database. All methods are synchronous and thread-safe."""

    url: str
    #: True when ``wait_for_wakeup`` is pushed by the database (PostgreSQL LISTEN/NOTIFY).
    notifies: bool

    # -- lifecycle ----------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply pending migrations (safe with concurrent callers); return the versions applied."""

    def applied_migrations(self) -> list[str]:
        """Versions recorded in ``schema_migrations`` (empty before the first migration)."""

    def close(self) -> None: ...

    # -- instances ----------------------------------------------------------------------------
    def create_instance(
        self, record: InstanceRecord, started_event: bytes, deadline: TimerSpec | None = None
    ) -> tuple[InstanceRecord, bool]:
        """Insert ``record`` with ``started_event`` as history position 0, unless the id exists,
        and its ``deadline`` timer (``record.deadline`` set) in the same transaction.

        Returns (the stored record, created?). ``record`` may come with a lease already set
        (``status="running"``) so the creating worker runs it at once without another commit.
        """

    def get_instance(self, instance_id: str) -> InstanceRecord | None: ...

    def list_instances(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
        created_before: float | None = None,
        created_after: float | None = None,
    ) -> list[InstanceRecord]:
        """Newest first."""

    def load_history(self, instance_id: str) -> list[bytes]:
        """The current run's history events (JSON bytes) in order."""

    def fork_instance(
        self,
        record: InstanceRecord,
        started_event: bytes,
        *,
        source_run: int,
        events: int,
    ) -> InstanceRecord:
        """Create the fork ``record`` (``pending``; ``forked_from`` names the source instance)
        with ``started_event`` as history position 0 followed by positions 1 to ``events - 1``
        of the source's current history, copied inside the database, in one transaction: the
        fork exists with its whole history or not at all.

        Raises WorkflowNotFound when the source does not exist, InvalidInput when
        ``record.instance_id`` exists or the source is no longer at run ``source_run`` with at
        least ``events`` events (it recurred meanwhile); nothing is stored then."""

    def load_archived_history(self, instance_id: str, run: int) -> list[bytes]: ...

    def load_run(self, instance_id: str) -> tuple[list[bytes], list[InboxItem]]:
        """``load_history`` and ``load_inbox`` together (what a worker reads to resume)."""

    def load_inbox(self, instance_id: str) -> list[InboxItem]:
        """Inbox items in arrival order."""

    def registered_steps(self, instance_id: str) -> list[int]:
        """The steps (ascending, each once) at which the instance has a timer, a wait, or a
        child that has not ended and whose result it waits for (``parent_step``). A worker
        asks only when a replayed history ends at an undecided ``Patched``."""

    # -- leases -------------------------------------------------------------------------------
    def claim(
        self,
        owner: str,
        *,
        limit: int,
        lease_seconds: float,
        now: float,
        workflows: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
    ) -> list[InstanceRecord]:
        """Claim up to ``limit`` claimable instances (oldest first); never one claimed by another
        live lease, never one in ``exclude`` (what the worker is running: its lease may have
        ended under it, but it must not run twice). Sets status ``running``, ``lease_owner``, a
        new ``lease_token`` and ``lease_expires_at``. With ``workflows``, only instances of those
        workflow names (a worker claims what it can run)."""

    def claim_instance(
        self, instance_id: str, owner: str, *, lease_seconds: float, now: float
    ) -> InstanceRecord | None:
        """Claim one specific instance if it is claimable (or already held by ``owner``), under a
        new ``lease_token``."""

    def heartbeat(
        self, instance_ids: Sequence[str], owner: str, *, lease_seconds: float, now: float
    ) -> list[str]:
        """Extend the leases ``owner`` still holds; return the ids whose lease was lost."""

    def release(self, instance_id: str, owner: str) -> None:
        """Give an instance back (status ``pending``, no lease), e.g. on worker shutdown."""

    # -- liveness -----------------------------------------------------------------------------
    def register_worker(self, worker_id: str, *, now: float) -> WorkerHold:
        """Take the liveness hold of worker ``worker_id`` (the owner of its leases) and register
        it. The hold is something the database or the OS releases the moment the process dies:
        a session-level advisory lock on a dedicated PostgreSQL connection, ``GET_LOCK`` on a
        dedicated MySQL connection, an ``flock`` on a file of its own next to a SQLite database.
        """

    def reap_dead_workers(self) -> list[str]:
        """Find the registered workers whose hold is gone (their process, or their dedicated
        connection, died), make the instances they held ``pending`` with no lease, so that any
        worker claims them at once, and unregister them. Returns the released instance ids.
        Instances of owners that never registered are left to lease expiry."""

    # -- steps --------------------------------------------------------------------------------
    def commit(self, commit: StepCommit) -> CommitResult:
        """Apply one :class:`StepCommit` in its own transaction."""

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A lazy transaction for a transactional activity (see :class:`Transaction`); it
        commits only through ``Transaction.commit``, and rolls back when left otherwise."""

    # -- waking -------------------------------------------------------------------------------
    def fire_due_timers(self, *, now: float, limit: int = 100) -> list[str]:
        """Move every timer due at ``now`` into its instance's inbox (exactly once across
        workers), waking the instances; return the woken instance ids."""

    def next_timer_at(self) -> float | None: ...

    def send_event(self, event: StoredEvent, *, now: float) -> tuple[bool, list[str]]:
        """Store an external event, deduplicated on (source, id) when id is set, and deliver it
        to the instances waiting for it (the target only, if ``target``; else every instance
        waiting on that type whose ``match`` fits). An unknown target raises WorkflowNotFound
        and stores nothing. Undelivered, it stays available to later waits of any instance
        created before it arrived (broadcast) or of the target. Each instance receives a given
        event at most once. Returns (stored? (False for a duplicate), woken ids)."""

    def send_batch(
        self,
        batch: Sequence[tuple[StoredEvent, Sequence[tuple[InstanceRecord, bytes]]]],
        *,
        now: float,
    ) -> tuple[list[bool], list[str]]:
        """In ONE transaction, for each (event, starts) in order: :meth:`send_event` the event,
        then :meth:`create_instance` each (record, started event) of ``starts`` (an existing id
        is left as it is). All or nothing: an error (an unknown target: WorkflowNotFound) stores
        none of it. Returns (stored? per event, woken ids)."""

    def publish(self, message: PublishSpec, *, now: float) -> list[str]:
        """Store a channel message and deliver it: broadcast subscribers each get it once,
        competing subscribers share it (exactly one gets it), a ``target`` gets it alone.
        Returns the woken instance ids."""

    def request_cancel(self, instance_id: str, reason: str, *, now: float) -> InstanceRecord:
        """Put a CancelRequested event into the inbox and wake the instance.

        A terminal instance is returned unchanged; an unknown id raises WorkflowNotFound."""

    def block(
        self, instance_id: str, owner: str, error: Any, *, now: float, token: str | None = None
    ) -> bool:
        """Park an instance whose replay broke (``NonDeterminismError``): if ``owner`` holds it
        (under lease ``token``),
        store ``error`` (builtins), set the status ``blocked`` and release the lease. A blocked
        instance is never claimed and nothing wakes it (its inbox still fills) until
        :meth:`retry_blocked`. False if ``owner`` no longer holds it."""

    def retry_blocked(self, *, now: float, workflows: Sequence[str] | None = None) -> int:
        """Make every ``blocked`` instance (of ``workflows``, if given) ``pending`` again, its
        error cleared, so that a worker replays it once more (after a fix is deployed); returns
        how many."""

    def wait_for_wakeup(self, timeout: float) -> bool:
        """Block up to ``timeout`` s for a database notification that work may be available."""

    # -- outbox -------------------------------------------------------------------------------
    def claim_outbox(
        self, owner: str, *, limit: int, now: float, lease_seconds: float
    ) -> list[OutboxRecord]: ...

    def finish_outbox(
        self, record_id: int, *, delivered: bool, error: str | None, next_attempt_at: float | None
    ) -> None:
        """Mark delivered, or record the error and when to try again (None: give up, ``failed``)."""

    # -- queues -------------------------------------------------------------------------------
    def declare_queue(self, spec: QueueSpec, *, now: float) -> None:
        """Create the queue or replace its limits (the last declaration wins)."""

    def enqueue(self, record: InstanceRecord, started_event: bytes) -> tuple[InstanceRecord, bool]:
        """``create_instance`` for a ``queued`` record (``record.queue`` set, declared, else
        UnknownQueue). With ``record.dedup_key``, raises DuplicateQueueKey, storing nothing,
        when an unfinished instance of the queue has that key (checked under the queue's lock).
        Returns (the stored record, created?); an existing id is returned unchanged."""

    def admit(
        self,
        owner: str,
        *,
        queues: Sequence[str],
        limit: int,
        now: float,
        workflows: Sequence[str] | None = None,
    ) -> AdmitResult:
        """The admission step (see ``replaykit.core.queues``): for each of ``queues``, under its
        lock, count its running instances, those ``owner`` admitted and its recent starts, and
        make up to what :func:`~replaykit.core.queues.admission` allows of its ``queued``
        instances ``pending`` (highest priority first, then oldest), recording ``admitted_at``
        and ``owner``; at most ``limit`` in all. With ``workflows``, only instances of those.
        """

    def queue_stats(self) -> list[QueueStats]:
        """Every declared queue with its queued and running counts, by name."""

    # -- schedules (see replaykit.core.schedules) ---------------------------------------------
    def save_schedule(self, schedule: Schedule) -> tuple[Schedule, bool]:
        """Insert ``schedule``, or update the stored one of that id as ``merge_schedule`` says
        (nothing when its workflow and spec are unchanged). Returns (stored, changed?)."""

    def get_schedule(self, schedule_id: str) -> Schedule | None: ...

    def list_schedules(self) -> list[Schedule]:
        """Every schedule, by id."""

    def delete_schedule(self, schedule_id: str) -> bool:
        """Delete a schedule (its instances stay); False if there was none."""

    def pause_schedule(self, schedule_id: str, paused: bool, *, now: float) -> Schedule:
        """Pause or resume it (``set_paused``); raises ScheduleNotFound."""

    def fire_due_schedules(self, *, now: float, limit: int = 100) -> list[str]:
        """For every unpaused schedule due at ``now`` (``next_fire_at <= now``), in one
        transaction: create the instances of the ticks ``plan_firing`` chooses (ids from
        ``tick_instance_id``: one that exists is left alone, so each tick starts at most one
        instance however many workers fire) and store when it is next due. Returns the ids
        of the instances created."""

    def next_schedule_at(self) -> float | None:
        """The earliest ``next_fire_at`` of the unpaused schedules."""

    # -- operations ---------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counts by status and the oldest waiting instance (for operators); ``queues``: for
        each declared queue, ``queued`` and ``running`` counts and its limits."""

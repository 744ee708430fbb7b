"""``App``: the entry point. Registers workflows, runs workers, and is the client API.

>>> app = App(database="sqlite:///orders.db", workflows=[order])
>>> with app:                                   # starts workers; `async with app:` works too
...     handle = app.start_workflow(order, OrderInput(id="o1", sku="book", qty=1, amount=20.0))
...     app.send_event("payment.completed", {"order": "o1"}, instance_id=handle.instance_id)
...     print(handle.result(timeout=30))
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, Generic, Literal, TypeVar

import msgspec

from ..core.codec import to_builtins
from ..core.commands import check_timeout
from ..core.definitions import Activity, Registry, Workflow, default_registry
from ..core.effects import Values, deadline_timer
from ..core.errors import (
    InvalidInput,
    ReplayKitError,
    WorkflowFailed,
    WorkflowNotFound,
)
from ..core.failures import blocked, cancelled
from ..core.forking import fork_cut, forked_start
from ..core.history import (
    ErrorInfo,
    EventData,
    HistoryEvent,
    WorkflowStarted,
    decode_event,
    encode_event,
)
from ..core.queues import QueueSpec, QueueStats, queue_name, queue_spec
from ..core.validation import check_count, check_event, check_id, check_seconds, check_text
from ..storage import TERMINAL_STATUSES, InstanceRecord, PublishSpec, Storage, StoredEvent
from .clock import SYSTEM_VALUES, Clock, SystemClock, random_token, uuid4_hex
from .executor import timer_spec
from .hooks import HookDispatcher, LoggingHooks
from .intake import StartOn, intake_factory
from .outbox import Deliver, OutboxRelay
from .schedules import ScheduleClient
from .worker import Worker

R = TypeVar("R")


class WorkflowHandle(Generic[R]):
    """A started instance: ask for its status or result, cancel it, send it events."""

    def __init__(self, app: App, instance_id: str, workflow: Workflow[Any, R] | None) -> None:
        self.app = app
        self.instance_id = instance_id
        self.workflow = workflow

    def status(self) -> InstanceRecord:
        return self.app.status(self.instance_id)

    def result(self, timeout: float | None = None) -> R:
        """Wait for the result (decoded to the workflow's return type)."""
        value: R = self.app.result(self.instance_id, timeout=timeout)
        return value

    async def result_async(self, timeout: float | None = None) -> R:
        return await asyncio.to_thread(self.result, timeout)

    def cancel(self, reason: str = "") -> InstanceRecord:
        return self.app.cancel(self.instance_id, reason)

    def send_event(self, type: str, data: Any = None, **attrs: Any) -> None:
        self.app.send_event(type, data, instance_id=self.instance_id, **attrs)

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.instance_id}>"


class App(ScheduleClient):
    """Workflows, workers and client operations over one database.

    ``database``: ``sqlite:///path.db`` (default ``sqlite:///replaykit.db``), ``postgresql://...``
    or a Storage object. ``workers=False`` makes a client only (start, query, cancel, send).
    A worker's death is detected at once (``liveness_interval``, default 0.25 s: see
    docs/runtime.md, "Leases, liveness and takeover"), and its instances are taken over by
    another worker, or by the same program restarted. ``lease_seconds`` (default 60, extended
    every ``lease_seconds / 3`` by heartbeats) is only the fallback, for a host that vanished
    from the network: keep it long enough that a live but stalled worker (a GC pause, a busy
    host) still renews its leases in time.
    A ``blocked`` instance (its replay broke) is replayed again when a worker starts and
    every ``blocked_retry_interval`` seconds (default 60), so it carries on by itself once a
    fix is deployed.

    Test hooks (both default to the real thing): ``clock`` is where the App reads the time
    (``time()``: timers, leases, the ``at`` of history events, ``Now()``), and ``values`` gives
    the values of ``Uuid``, ``Random`` and ``SideEffect`` (``replaykit.core.effects.Values``).
    A test that passes a clock it moves itself and seeded values (e.g.
    ``replaykit.testing.executor.SeededValues``) makes an App's histories reproducible; the
    differential suite (``tests/differential``) runs App so.
    """

    def __init__(
        self,
        database: str | Storage = "sqlite:///replaykit.db",
        *,
        workflows: Iterable[Workflow[Any, Any]] = (),
        activities: Iterable[Activity[Any, Any]] = (),
        registry: Registry | None = None,
        workers: bool = True,
        concurrency: int = 8,
        lease_seconds: float = 60.0,
        poll_interval: float = 1.0,
        liveness_interval: float = 0.25,
        hooks: Sequence[Any] = (),
        auto_migrate: bool = True,
        clock: Clock | None = None,
        values: Values | None = None,
        outbox_delivery: Deliver | str | None = None,
        outbox_mode: Literal["binary", "structured"] = "binary",
        outbox_options: dict[str, Any] | None = None,
        owner: str | None = None,
        storage_options: dict[str, Any] | None = None,
        blocked_retry_interval: float = 60.0,
    ) -> None:
        self.database = database
        self.registry = registry or default_registry
        for wf in workflows:
            self.registry.add_workflow(wf)
        for act in activities:
            self.registry.add_activity(act)
        self.run_workers = workers
        self.concurrency = check_count(concurrency, "concurrency", minimum=1)
        self.lease_seconds: float = check_seconds(lease_seconds, "lease_seconds", positive=True)
        self.poll_interval: float = check_seconds(poll_interval, "poll_interval", positive=True)
        self.liveness_interval: float = check_seconds(
            liveness_interval, "liveness_interval", positive=True
        )
        self.blocked_retry_interval = blocked_retry_interval
        self.auto_migrate = auto_migrate
        self.clock: Clock = clock or SystemClock()
        self.values: Values = values or SYSTEM_VALUES
        self.hooks = HookDispatcher([LoggingHooks(), *hooks])
        self.outbox_delivery = outbox_delivery
        self.outbox_mode = outbox_mode
        self.outbox_options = outbox_options or {}
        #: ``StartOn`` rules registered with :meth:`on_event` (read by the CloudEvents intake)
        self.event_handlers: list[StartOn] = []
        self._schedules_declared = []  # schedules declared with @app.scheduled, saved at start
        self.owner = owner or f"{uuid.uuid4().hex[:8]}"
        self._storage_options = storage_options or {}
        self._storage: Storage | None = database if not isinstance(database, str) else None
        self._owns_storage = isinstance(database, str)
        self._lock = threading.Lock()
        #: guards the outcomes of instances that ended here and the waiting result() calls
        self._finished = threading.Lock()
        self._finished_here: dict[str, InstanceRecord] = {}
        #: instance id -> the locks of the result() calls waiting for it (released when it ends)
        self._waiters: dict[str, list[threading.Lock]] = {}
        self.worker: Worker | None = None
        self.relay: OutboxRelay | None = None
        self.started = False
        #: queues declared with :meth:`queue`; this app's workers admit their instances
        self.queues: dict[str, QueueSpec] = {}
        self._declared: set[str] = set()

    # ------------------------------------------------------------------ storage & lifecycle

    @property
    def storage(self) -> Storage:
        """The storage adapter, opened (and migrated unless ``auto_migrate=False``) on first use."""
        with self._lock:
            if self._storage is None:
                from storage_adapters import open_storage

                assert isinstance(self.database, str)
                self._storage = open_storage(
                    self.database, auto_migrate=self.auto_migrate, **self._storage_options
                )
            return self._storage

    def register(self, *items: Workflow[Any, Any] | Activity[Any, Any]) -> None:
        """Register more workflows or activities (before ``start``)."""
        for item in items:
            if isinstance(item, Workflow):
                self.registry.add_workflow(item)
            else:
                self.registry.add_activity(item)

    def start(self) -> App:
        """Start workers (and the outbox relay if configured). Idempotent."""
        if self.started:
            return self
        storage = self.storage
        self._declare_queues()
        self._save_declared_schedules()
        if self.run_workers:
            self.worker = Worker(
                storage=storage,
                registry=self.registry,
                clock=self.clock,
                hooks=self.hooks,
                concurrency=self.concurrency,
                lease_seconds=self.lease_seconds,
                poll_interval=self.poll_interval,
                liveness_interval=self.liveness_interval,
                owner=f"{self.owner}-{uuid.uuid4().hex[:6]}",
                on_finished=self._on_finished,
                values=self.values,
                blocked_retry_interval=self.blocked_retry_interval,
            )
            self.worker.queues = sorted(self.queues)
            self.worker.start()
        if self.outbox_delivery is not None:
            self.relay = OutboxRelay(
                storage,
                self.outbox_delivery,
                **{
                    "mode": self.outbox_mode,
                    "poll_interval": self.poll_interval,
                    "clock": self.clock,
                    **self.outbox_options,
                },
            )
            self.relay.start()
        self.started = True
        return self

    def stop(self) -> None:
        """Stop workers (instances they hold are released) and close the database."""
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        if self.relay is not None:
            self.relay.stop()
            self.relay = None
        self.started = False
        with self._lock:
            if self._storage is not None and self._owns_storage:
                self._storage.close()
                self._storage = None
                self._declared.clear()

    def __enter__(self) -> App:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> App:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    # ------------------------------------------------------------------ client operations

    # ------------------------------------------------------------------ queues

    def queue(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        per_worker: int | None = None,
        rate: tuple[int, float] | None = None,
    ) -> QueueSpec:
        """Declare a named queue (see docs/queues.md); this app's workers admit its instances.

        ``concurrency``: at most this many of its instances run at once across every worker
        and machine (running = admitted and not finished, also while it sleeps or waits);
        ``per_worker``: at most this many unfinished ones admitted by one worker;
        ``rate=(n, seconds)``: at most ``n`` starts in any ``seconds``. The limits are stored
        in the database (the last declaration wins) and enforced there. Raises InvalidInput.
        """
        spec = queue_spec(name, concurrency=concurrency, per_worker=per_worker, rate=rate)
        with self._lock:
            self.queues[name] = spec
            self._declared.discard(name)
        if self.started:
            self._declare_queues()
            if self.worker is not None:
                self.worker.queues = sorted(self.queues)
        return spec

    def enqueue(
        self,
        queue: str | QueueSpec,
        workflow: Workflow[Any, R] | str,
        input: Any = None,
        *,
        instance_id: str | None = None,
        priority: int = 0,
        dedup_key: str | None = None,
        timeout: float | None = None,
    ) -> WorkflowHandle[R]:
        """Start an instance on ``queue``: it is stored ``queued`` and runs when the queue's
        limits admit it (higher ``priority`` first, then in order of enqueueing).

        With ``timeout`` (seconds), its deadline is ``timeout`` seconds after its queue admits
        it (waiting in the queue does not count), as ``start_workflow(timeout=)``'s otherwise.

        With ``dedup_key``, raises DuplicateQueueKey (storing nothing) while an unfinished
        instance of the queue has the same key. Raises UnknownQueue for a queue nobody has
        declared, and what :meth:`start_workflow` raises. The same ``instance_id`` twice is
        idempotent (the first instance's handle)."""
        name = queue_name(queue)
        if isinstance(queue, QueueSpec) and name not in self.queues:
            self.queues[name] = queue
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise InvalidInput(f"priority must be an int, not {priority!r}")
        if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > 200):
            raise InvalidInput("dedup_key must be a string of at most 200 characters")
        wf, instance_id, started = self._started(workflow, input, instance_id)
        seconds = None if timeout is None else check_timeout(timeout, "timeout")
        self._declare_queues()
        record = InstanceRecord(
            instance_id=instance_id,
            workflow=wf.name,
            status="queued",
            input=started.input,
            created_at=started.at,
            updated_at=started.at,
            history_len=1,
            queue=name,
            priority=priority,
            dedup_key=dedup_key,
            version=wf.version,
            timeout=seconds,
        )
        _, created = self.storage.enqueue(record, encode_event(started))
        if created:
            self._wake()
        return WorkflowHandle(self, instance_id, wf)

    def queue_stats(self) -> list[QueueStats]:
        """Every declared queue: its limits, how many instances wait in it, how many run."""
        return self.storage.queue_stats()

    def _declare_queues(self) -> None:
        with self._lock:
            todo = [spec for name, spec in self.queues.items() if name not in self._declared]
        for spec in todo:
            self.storage.declare_queue(spec, now=self.clock.time())
            with self._lock:
                self._declared.add(spec.name)

    # ------------------------------------------------------------------ starting

    def _started(
        self,
        workflow: Workflow[Any, R] | str,
        input: Any,
        instance_id: str | None,
        timeout: float | None = None,
    ) -> tuple[Workflow[Any, R], str, WorkflowStarted]:
        """The workflow, the instance id and the WorkflowStarted event of a new instance (its
        ``deadline`` set ``timeout`` seconds from now); InvalidInput for an input that does not
        encode or an invalid ``instance_id`` (see ``replaykit.core.validation``),
        UnknownWorkflow, before anything is stored."""
        if instance_id is not None:
            check_id(instance_id)
        wf = self._workflow(workflow)
        raw = wf.encode_input(input)
        seconds = None if timeout is None else check_timeout(timeout, "timeout")
        instance_id = instance_id or uuid4_hex()
        now = self.clock.time()
        deadline = None if seconds is None else now + seconds
        started = WorkflowStarted(
            workflow=wf.name, instance_id=instance_id, input=raw, deadline=deadline, at=now
        )
        return wf, instance_id, started

    def start_workflow(
        self,
        workflow: Workflow[Any, R] | str,
        input: Any = None,
        *,
        instance_id: str | None = None,
        queue: str | QueueSpec | None = None,
        priority: int = 0,
        dedup_key: str | None = None,
        timeout: float | None = None,
    ) -> WorkflowHandle[R]:
        """Start an instance; with a caller-chosen ``instance_id`` starting twice is idempotent.

        With ``queue``, the same as :meth:`enqueue` (``priority`` and ``dedup_key`` are for
        queues only). Raises UnknownWorkflow for an unregistered name and InvalidInput when
        ``input`` does not encode to the workflow's input type (nothing is stored then).

        With ``timeout`` (seconds), the instance must end by then: when its deadline passes it
        is cancelled with :class:`~replaykit.WorkflowTimedOut` wherever it is (its
        compensations run), and ``result()`` raises that error. The deadline is a durable timer
        stored with the instance, so it holds across restarts; with ``queue`` it is counted from
        the admission. A ``timeout`` that is not a positive number is InvalidInput.
        """
        if queue is not None:
            return self.enqueue(
                queue,
                workflow,
                input,
                instance_id=instance_id,
                priority=priority,
                dedup_key=dedup_key,
                timeout=timeout,
            )
        if priority != 0 or dedup_key is not None:
            raise InvalidInput("priority and dedup_key apply to queues: pass queue= as well")
        wf, instance_id, started = self._started(workflow, input, instance_id, timeout)
        now, deadline = started.at, started.deadline
        timer = None if deadline is None else timer_spec(deadline_timer(deadline))
        worker = self.worker
        leased = worker is not None and worker.try_reserve(instance_id)
        record = InstanceRecord(
            instance_id=instance_id,
            workflow=wf.name,
            status="running" if leased else "pending",
            input=started.input,
            lease_owner=worker.owner if leased and worker else None,
            lease_token=random_token() if leased else None,
            lease_expires_at=now + self.lease_seconds if leased else None,
            created_at=now,
            updated_at=now,
            history_len=1,
            version=wf.version,
            deadline=deadline,
        )
        try:
            stored, created = self.storage.create_instance(record, encode_event(started), timer)
        except BaseException:
            if leased and worker is not None:
                worker.unreserve(instance_id)
            raise
        if leased and worker is not None:
            if created:
                worker.submit(stored, started)
            else:
                worker.unreserve(instance_id)
        elif created and worker is not None:
            worker.wake()
        return WorkflowHandle(self, instance_id, wf)

    def status(self, instance_id: str) -> InstanceRecord:
        """The instance's record; raises WorkflowNotFound."""
        record = self.storage.get_instance(check_id(instance_id))
        if record is None:
            raise WorkflowNotFound(f"no workflow instance with id {instance_id!r}")
        return record

    def result(self, instance_id: str, *, timeout: float | None = None) -> Any:
        """Wait until the instance ends; return its result or raise its failure.

        Raises WorkflowFailed (with the error's type name and message), WorkflowCancelled,
        WorkflowTimedOut (its deadline passed), NonDeterminismError as soon as the instance is
        ``blocked`` (its replay broke), or TimeoutError when ``timeout`` seconds pass
        first.
        """
        check_id(instance_id)
        timeout = check_seconds(timeout, "timeout", optional=True)
        deadline = None if timeout is None else self.clock.time() + timeout
        delay = 0.002
        worker = self.worker
        while True:
            record = self._finished_here.pop(instance_id, None)
            running_here = record is None and worker is not None and worker.holds(instance_id)
            if running_here:  # this process will be told when it ends: no polling needed
                record = InstanceRecord(instance_id=instance_id, workflow="", status="running")
                delay = self.poll_interval
            record = record or self.status(instance_id)
            if record.status in TERMINAL_STATUSES:
                return self._outcome(record)
            if record.status == "blocked":
                raise blocked(record.instance_id, record.error)
            remaining = None if deadline is None else deadline - self.clock.time()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(
                    f"instance {instance_id!r} is still {record.status} after {timeout} s"
                )
            wait = delay if remaining is None else min(delay, remaining)
            self._wait_for_end(instance_id, wait, running_here)
            delay = min(delay * 2, self.poll_interval)

    def _wait_for_end(self, instance_id: str, seconds: float, running_here: bool) -> None:
        """Wait at most ``seconds`` for ``instance_id`` to end in this process (or to be
        blocked, or continued as new): a lock of this call's own, released by
        :meth:`_on_finished` for that instance only."""
        waiter = threading.Lock()
        waiter.acquire()
        with self._finished:
            if instance_id in self._finished_here:
                return
            self._waiters.setdefault(instance_id, []).append(waiter)
        worker = self.worker
        if running_here and worker is not None and not worker.holds(instance_id):
            seconds = 0  # its run here ended before this call was waiting: look again now
        try:
            waiter.acquire(timeout=seconds)
        finally:
            with self._finished:
                waiting = self._waiters.get(instance_id)
                if waiting is not None and waiter in waiting:
                    waiting.remove(waiter)
                    if not waiting:
                        del self._waiters[instance_id]

    def _outcome(self, record: InstanceRecord) -> Any:
        if record.status == "completed":
            wf = self.registry.workflows.get(record.workflow)
            return wf.decode_result(record.output) if wf is not None else record.output
        error = record.error or {}
        type_name = str(error.get("type", "")) if isinstance(error, dict) else ""
        message = str(error.get("message", "")) if isinstance(error, dict) else str(error)
        if record.status == "cancelled":
            raise cancelled(record.instance_id, ErrorInfo(type=type_name, message=message))
        raise WorkflowFailed(
            f"instance {record.instance_id!r} failed: {type_name}: {message}",
            instance_id=record.instance_id,
            type_name=type_name,
            status=record.status,
        )

    def fork(self, instance_id: str, *, step: int, new_id: str | None = None) -> str:
        """A new instance from ``instance_id``'s history up to ``step``: it replays the steps
        before ``step`` from the copied history (their activities do not run again) and runs
        ``step`` and everything after it again, under the code this App's workers run. The
        source may be in any status and is left as it is. Returns the new id (``new_id``, or
        ``{instance_id}~fork-{hex}``); its record says where it came from (``forked_from``,
        ``forked_step``). See docs/fork.md.

        Raises WorkflowNotFound for an unknown instance, StepOutOfRange for a step its history
        does not have (``1`` to one past its last step), InvalidInput when ``new_id`` exists.
        """
        source = self.status(instance_id)
        history = [decode_event(b) for b in self.storage.load_history(instance_id)]
        events = fork_cut(history, step, instance_id=instance_id)
        new_id = new_id if new_id is not None else f"{instance_id}~fork-{uuid.uuid4().hex[:8]}"
        check_id(new_id, "new_id")
        now = self.clock.time()
        record = InstanceRecord(
            instance_id=new_id,
            workflow=source.workflow,
            status="pending",
            input=source.input,
            created_at=now,
            updated_at=now,
            version=source.version,
            forked_from=instance_id,
            forked_step=step,
        )
        started = encode_event(forked_start(history[0], new_id, instance_id, step))
        self.storage.fork_instance(record, started, source_run=source.run, events=events)
        self._wake()
        return new_id

    def cancel(self, instance_id: str, reason: str = "") -> InstanceRecord:
        """Ask an instance to cancel: the workflow gets WorkflowCancelled at its current yield
        and its compensations run. A finished instance is returned unchanged."""
        check_id(instance_id)
        check_text(reason, "reason")
        record = self.storage.request_cancel(instance_id, reason, now=self.clock.time())
        self._wake()
        return record

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
        """Store an event and wake the instances waiting for it.

        With ``instance_id`` only that instance receives it (it is kept until the instance waits
        for it); without, every instance waiting for ``type`` now or later (among those that
        existed when it arrived) receives it once. With ``id`` set, an event with the same
        (source, id) is stored once. Returns False for a duplicate.
        """
        event = StoredEvent(
            type=type,
            data=to_builtins(data, what="event data"),
            source=source,
            id=id,
            subject=subject,
            time=time,
            extensions=dict(extensions or {}),
            target=instance_id,
        )
        check_event(event, instance_id)
        handoff = getattr(self.storage, "send_event_and_claim", None)
        worker = self.worker
        if (
            instance_id is not None
            and handoff is not None
            and worker is not None
            and worker.try_reserve(instance_id)  # run it here at once if the event wakes it
        ):
            try:
                stored, handed = handoff(
                    event,
                    now=self.clock.time(),
                    owner=worker.owner,
                    lease_seconds=self.lease_seconds,
                    workflows=list(self.registry.workflows),
                )
            except BaseException:
                worker.unreserve(instance_id)
                raise
            if handed is not None:
                worker.submit(handed.record, run=(handed.history, handed.inbox))
            else:
                worker.unreserve(instance_id)
            return bool(stored)
        stored, woken = self.storage.send_event(event, now=self.clock.time())
        if woken:
            self._wake()
        return stored

    def send_events(
        self,
        events: Sequence[EventData],
        *,
        targets: Sequence[str | None] | None = None,
        starts: Sequence[Sequence[tuple[Workflow[Any, Any] | str, Any, str]]] | None = None,
    ) -> list[bool]:
        """Store several events and start workflows in ONE transaction: all or nothing.

        ``targets[i]`` is the instance event ``i`` is sent to (None: broadcast, as
        :meth:`send_event`); ``starts[i]`` lists the ``(workflow, input, instance_id)`` started
        after event ``i`` (an existing id is left as it is). Every part is checked first
        (InvalidInput, UnknownWorkflow); an unknown target raises WorkflowNotFound; in both
        cases nothing is stored. Returns, per event, False for a duplicate.
        """
        targets = list(targets) if targets is not None else [None] * len(events)
        starts = list(starts) if starts is not None else [()] * len(events)
        if not len(events) == len(targets) == len(starts):
            raise InvalidInput("events, targets and starts must have the same length")
        batch = []
        for ev, target, ev_starts in zip(events, targets, starts, strict=True):
            event = StoredEvent(
                type=ev.type,
                data=to_builtins(ev.data, what="event data"),
                source=ev.source,
                id=ev.id,
                subject=ev.subject,
                time=ev.time,
                extensions=dict(ev.extensions),
                target=target,
            )
            check_event(event, target)
            batch.append((event, [self._pending(wf, v, i) for wf, v, i in ev_starts]))
        stored, _ = self.storage.send_batch(batch, now=self.clock.time())
        self._wake()
        return stored

    def _pending(
        self, workflow: Workflow[Any, Any] | str, input: Any, instance_id: str
    ) -> tuple[InstanceRecord, bytes]:
        """The record and first history event of a new ``pending`` instance."""
        wf, instance_id, started = self._started(workflow, input, instance_id)
        record = InstanceRecord(
            instance_id=instance_id,
            workflow=wf.name,
            status="pending",
            input=started.input,
            created_at=started.at,
            updated_at=started.at,
            history_len=1,
        )
        return record, encode_event(started)

    def publish(
        self, channel: str, data: Any = None, metadata: dict[str, str] | None = None
    ) -> None:
        """Publish a message on ``channel`` from outside any workflow."""
        self._publish(channel, data, metadata, target=None)

    def send_message(
        self,
        instance_id: str,
        channel: str,
        data: Any = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Send a message on ``channel`` directly to one instance."""
        if self.storage.get_instance(check_id(instance_id)) is None:
            raise WorkflowNotFound(f"cannot send a message: no instance {instance_id!r}")
        self._publish(channel, data, metadata, target=instance_id)

    def _publish(
        self, channel: str, data: Any, metadata: dict[str, str] | None, *, target: str | None
    ) -> None:
        check_id(channel, "channel")
        spec = PublishSpec(
            channel=channel,
            data=to_builtins(data, what="message data"),
            metadata=metadata or {},
            target=target,
        )
        if self.storage.publish(spec, now=self.clock.time()):
            self._wake()

    def trigger_schedule(self, schedule_id: str) -> WorkflowHandle[Any]:
        """Start a schedule's workflow now, once, outside its ticks (also while paused); the
        instance id is ``"{schedule_id}@manual-{time}"``. Raises ScheduleNotFound."""
        instance_id, schedule = self._trigger(schedule_id)
        return WorkflowHandle(self, instance_id, self.registry.workflows.get(schedule.workflow))

    def get_instance(self, instance_id: str) -> InstanceRecord | None:
        """The instance's record, or None for an unknown id (:meth:`status` raises instead)."""
        return self.storage.get_instance(check_id(instance_id))

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
        """Instances, newest first, filtered by workflow name, status and creation time."""
        check_text(workflow, "workflow", optional=True)
        check_text(status, "status", optional=True)
        check_count(limit, "limit")
        check_count(offset, "offset")
        check_seconds(created_before, "created_before", optional=True)
        check_seconds(created_after, "created_after", optional=True)
        return self.storage.list_instances(
            workflow=workflow,
            status=status,
            limit=limit,
            offset=offset,
            created_before=created_before,
            created_after=created_after,
        )

    def history(self, instance_id: str, *, run: int | None = None) -> list[HistoryEvent]:
        """The history events of the current run, decoded, or of the earlier (archived) ``run``
        of an instance that recurred. Raises WorkflowNotFound."""
        record = self.status(instance_id)
        if run is None or run == record.run:
            raw = self.storage.load_history(instance_id)
        else:
            raw = self.storage.load_archived_history(instance_id, run)
        return [decode_event(b) for b in raw]

    def stats(self) -> dict[str, Any]:
        """Counts by status, the oldest waiting instance, lease owners, timers, outbox, and
        ``queues``: per declared queue, ``queued`` and ``running`` counts and its limits."""
        return self.storage.stats()

    def migrate(self) -> list[str]:
        """Apply pending schema migrations; the versions applied."""
        return self.storage.migrate()

    def migrations(self) -> list[dict[str, str]]:
        """Every migration shipped with the adapter: version, name, ``applied``/``pending``."""
        from storage_adapters import migration_status

        return migration_status(self.storage)

    # async mirrors of the client API
    async def start_workflow_async(
        self,
        workflow: Workflow[Any, R] | str,
        input: Any = None,
        *,
        instance_id: str | None = None,
        queue: str | QueueSpec | None = None,
        priority: int = 0,
        dedup_key: str | None = None,
        timeout: float | None = None,
    ) -> WorkflowHandle[R]:
        return await asyncio.to_thread(
            self.start_workflow,
            workflow,
            input,
            instance_id=instance_id,
            queue=queue,
            priority=priority,
            dedup_key=dedup_key,
            timeout=timeout,
        )

    async def enqueue_async(
        self,
        queue: str | QueueSpec,
        workflow: Workflow[Any, R] | str,
        input: Any = None,
        *,
        instance_id: str | None = None,
        priority: int = 0,
        dedup_key: str | None = None,
        timeout: float | None = None,
    ) -> WorkflowHandle[R]:
        return await asyncio.to_thread(
            self.enqueue,
            queue,
            workflow,
            input,
            instance_id=instance_id,
            priority=priority,
            dedup_key=dedup_key,
            timeout=timeout,
        )

    async def result_async(self, instance_id: str, *, timeout: float | None = None) -> Any:
        return await asyncio.to_thread(self.result, instance_id, timeout=timeout)

    async def send_event_async(self, type: str, data: Any = None, **kwargs: Any) -> bool:
        return await asyncio.to_thread(self.send_event, type, data, **kwargs)

    async def cancel_async(self, instance_id: str, reason: str = "") -> InstanceRecord:
        return await asyncio.to_thread(self.cancel, instance_id, reason)

    async def fork_async(self, instance_id: str, *, step: int, new_id: str | None = None) -> str:
        return await asyncio.to_thread(self.fork, instance_id, step=step, new_id=new_id)

    # ------------------------------------------------------------------ integrations

    send_to = send_message  # the outside twin of ``SendTo`` (the name the channel docs use)

    async def publish_async(
        self, channel: str, data: Any = None, metadata: dict[str, str] | None = None
    ) -> None:
        await asyncio.to_thread(self.publish, channel, data, metadata)

    async def send_to_async(
        self,
        instance_id: str,
        channel: str,
        data: Any = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        await asyncio.to_thread(self.send_message, instance_id, channel, data, metadata)

    def on_event(
        self,
        type: str,
        workflow: Workflow[Any, Any] | str,
        *,
        input: Any = None,
        instance_id: str = "{type}:{source}:{id}",
    ) -> None:
        """Start ``workflow`` for every CloudEvent of ``type`` received by :meth:`asgi`.

        ``input(event: EventData)`` makes the input (default: the event's data); ``instance_id``
        is a template over ``type``, ``source``, ``id`` and ``subject``, so a redelivered
        event never starts a second instance.
        """
        if isinstance(workflow, Workflow):
            self._workflow(workflow)
        rule = StartOn(type=type, workflow=workflow, input=input, instance_id=instance_id)
        self.event_handlers.append(rule)

    def asgi(self, *, path: str = "/", max_body: int = 1024 * 1024) -> Any:
        """The CloudEvents intake as an ASGI app: ``cloudevents_app(self, ...)`` of
        ``replaykit.integrations.http``, which provides it (``pip install
        'replaykit-durable[http]'``; see :func:`intake_factory`)."""
        return intake_factory()(self, path=path, max_body=max_body)

    # ------------------------------------------------------------------ internals

    def _workflow(self, workflow: Workflow[Any, R] | str) -> Workflow[Any, R]:
        if isinstance(workflow, Workflow):
            if self.registry.workflows.get(workflow.name) is not workflow:
                self.registry.add_workflow(workflow)
            return workflow
        found: Workflow[Any, R] = self.registry.workflow(workflow)
        return found

    def _on_finished(self, executor: Any) -> None:
        """An instance this process ran has committed its end: remember the outcome briefly so
        ``result()`` answers without a database round trip, and wake the ``result()`` calls
        waiting for it (an instance that was blocked or continued as new wakes them too)."""
        interp = executor.interp
        record = None
        if interp.status in TERMINAL_STATUSES:
            record = msgspec.structs.replace(
                executor.record,
                status=interp.status,
                output=interp.result,
                error=to_builtins(interp.error) if interp.error is not None else None,
                lease_owner=None,
                lease_expires_at=None,
            )
        finished = self._finished_here
        with self._finished:
            if record is not None:
                finished[executor.instance_id] = record
                while len(finished) > 10_000:
                    finished.pop(next(iter(finished)))
            waiting = self._waiters.pop(executor.instance_id, ())
        for waiter in waiting:
            waiter.release()

    def _wake(self) -> None:
        if self.worker is not None:
            self.worker.wake()


__all__ = ["App", "ReplayKitError", "WorkflowHandle"]

"""A worker: claims runnable instances under a lease and runs them on a pool of threads.

Threads (all daemon, all stopped by :meth:`Worker.stop`):

* dispatcher  claims instances while there is capacity; woken at once by local starts, local
              event deliveries and database notifications, else polls every ``poll_interval``;
              before claiming, admits queued instances of the app's queues (``Storage.admit``),
              and wakes when a queue's rate limit lets the next one start
* timers      fires due timers (exactly once across workers) at their time, not on a fixed tick
* heartbeat   extends the leases of the instances this worker holds
* liveness    every ``liveness_interval``: checks this worker's own liveness hold (fenced when
              it is lost), and takes over the instances of workers that died (their hold is
              gone), which it also does once at start (a restarted process takes over its
              dead predecessor's instances at once)
* listener    (PostgreSQL) turns LISTEN/NOTIFY notifications into wake-ups

A worker registers under ``owner`` with a liveness hold (``Storage.register_worker``). If its
hold is lost while it runs (its dedicated connection died), the others take it for dead and
take its instances over: it is *fenced*. It marks every executor lost (each stops at its next
step and commits nothing more: the leases they hold are another's now, or will be), and
registers again under a new owner id to carry on with new work.
"""

from __future__ import annotations

import importlib
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from ..core.codec import to_builtins
from ..core.definitions import Registry
from ..core.effects import Values
from ..core.errors import LeaseLost, NonDeterminismError, ReplayKitError, StorageError
from ..core.failures import error_info
from ..core.history import WorkflowStarted
from ..storage import InboxItem, InstanceRecord, Storage, WorkerHold
from .activities import AsyncRunner
from .clock import SYSTEM_VALUES, Clock
from .executor import InstanceExecutor
from .hooks import HookDispatcher
from .run_pool import RunPool
from .schedule_firing import fire_schedules

log = logging.getLogger("replaykit.worker")


def import_error_class(type_name: str) -> type[BaseException] | None:
    """Resolve ``module.QualName`` to an exception class by importing its module (shell only)."""
    module_name, _, qualname = type_name.rpartition(".")
    while module_name:
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError:
            module_name, _, head = module_name.rpartition(".")
            qualname = f"{head}.{qualname}"
            continue
        for part in qualname.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        if isinstance(obj, type) and issubclass(obj, BaseException):
            return obj
        return None
    return None


class Worker:
    """Runs workflow instances of ``registry`` from ``storage``; see the module docstring."""

    def __init__(
        self,
        *,
        storage: Storage,
        registry: Registry,
        clock: Clock,
        hooks: HookDispatcher,
        concurrency: int = 8,
        lease_seconds: float = 60.0,
        poll_interval: float = 1.0,
        liveness_interval: float = 0.25,
        owner: str | None = None,
        on_finished: Callable[[InstanceExecutor], None] | None = None,
        values: Values = SYSTEM_VALUES,
        blocked_retry_interval: float = 60.0,
    ) -> None:
        self.storage = storage
        self.registry = registry
        self.clock = clock
        self.values = values
        self.hooks = hooks
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.liveness_interval = liveness_interval
        self.owner = owner or f"worker-{uuid.uuid4().hex[:12]}"
        self._name = self.owner
        self._hold: WorkerHold | None = None
        self.async_runner = AsyncRunner()
        self.stopping = False
        self._on_finished = on_finished
        self._lock = threading.Lock()
        self._active: dict[str, InstanceExecutor | None] = {}
        #: claims of instances this worker was already running, run when that run ends
        self._after: dict[str, InstanceRecord] = {}
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._timer_wake = threading.Event()
        self._next_timer: float | None = None
        self._pool: RunPool | None = None
        self._threads: list[threading.Thread] = []
        self._error_cache: dict[str, type[BaseException] | None] = {}
        #: the queues this worker admits instances of (``App.queue`` declares them)
        self.queues: list[str] = []
        self._admit_again_at: float | None = None
        self.blocked_retry_interval = blocked_retry_interval
        self._next_blocked_retry = 0.0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.stopping = False
        self._stopped.clear()
        self._hold = self.storage.register_worker(self.owner, now=self.clock.time())
        self._pool = RunPool(self.concurrency, "replaykit-run")
        self._reap()  # a restarted process takes over its dead predecessor's instances now
        self._next_blocked_retry = 0.0
        self._retry_blocked(self.clock.time())  # a start may be the deploy of a fix
        loops: list[tuple[str, Callable[[], None]]] = [
            ("dispatcher", self._dispatch_loop),
            ("timers", self._timer_loop),
            ("heartbeat", self._heartbeat_loop),
            ("liveness", self._liveness_loop),
        ]
        if self.storage.notifies:
            loops.append(("listener", self._listen_loop))
        for name, target in loops:
            thread = threading.Thread(target=target, name=f"replaykit-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self.stopping = True
        self._stopped.set()
        self._wake.set()
        self._timer_wake.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self.async_runner.close()
        hold, self._hold = self._hold, None
        if hold is not None:
            try:
                hold.release()
            except ReplayKitError:
                log.exception("could not unregister worker %s", hold.worker_id)

    # ------------------------------------------------------------------ signals

    def wake(self) -> None:
        """Look for runnable instances now."""
        self._wake.set()

    def timer_scheduled(self, fire_at: float) -> None:
        with self._lock:
            if self._next_timer is None or fire_at < self._next_timer:
                self._next_timer = fire_at
                self._timer_wake.set()

    def instance_finished(self, executor: InstanceExecutor) -> None:
        interp = executor.interp
        name = executor.workflow.name
        status = interp.status
        if status == "completed":
            self.hooks.emit("workflow_completed", executor.instance_id, name)
        elif status == "failed":
            self.hooks.emit("workflow_failed", executor.instance_id, name, interp.error)
        elif status == "cancelled":
            self.hooks.emit("workflow_cancelled", executor.instance_id, name)
        else:  # continued as new: the next run is pending
            self.wake()
        if executor.record.queue is not None and self.queues:
            self.wake()  # a place on its queue opened: admit the next one
        if self._on_finished is not None:
            self._on_finished(executor)

    def resolve_error(self, type_name: str) -> type[BaseException] | None:
        if type_name not in self._error_cache:
            found = self.registry.resolve_error(type_name) or import_error_class(type_name)
            self._error_cache[type_name] = found
        return self._error_cache[type_name]

    # ------------------------------------------------------------------ running instances

    def try_reserve(self, instance_id: str) -> bool:
        """Reserve a slot for an instance this process is about to create with a lease."""
        with self._lock:
            if self.stopping or self._pool is None or len(self._active) >= self.concurrency:
                return False
            if self._hold is None:  # fenced, not registered again yet: take no new work
                return False
            if instance_id in self._active:
                return False
            self._active[instance_id] = None
            return True

    def unreserve(self, instance_id: str) -> None:
        self._free(instance_id)

    def _free(self, instance_id: str) -> None:
        """The slot of ``instance_id`` is free: run a claim of it that waited for it, else let
        the dispatcher claim more if the worker was full."""
        with self._lock:
            was_full = len(self._active) >= self.concurrency
            self._active.pop(instance_id, None)
            queued = self._after.pop(instance_id, None)
        if queued is not None and self.stopping:
            self.release(instance_id)
        elif queued is not None:
            self._start_claimed(queued)
        elif was_full:
            self._wake.set()  # a slot opened: claim the work that may have queued up

    def submit(
        self,
        record: InstanceRecord,
        started: WorkflowStarted | None = None,
        *,
        run: tuple[list[bytes], list[InboxItem]] | None = None,
    ) -> None:
        """Run a record this worker holds the lease for (slot already reserved). ``run`` is its
        history and inbox when the caller already read them under this lease."""
        assert self._pool is not None
        self._pool.submit(self._run, record, started, run)

    def _run(
        self,
        record: InstanceRecord,
        started: WorkflowStarted | None,
        run: tuple[list[bytes], list[InboxItem]] | None,
    ) -> None:
        instance_id = record.instance_id
        blocked = False
        try:
            executor = InstanceExecutor(self, record, started=started, preloaded=run)
            with self._lock:
                self._active[instance_id] = executor
            executor.run()
        except NonDeterminismError as exc:
            blocked = self._block(record, exc)
        except LeaseLost:
            log.warning("lease on %s lost; another worker took it over", instance_id)
        except StorageError:
            log.exception("database error while running %s; releasing it", instance_id)
            self.release(instance_id)
        except Exception:
            # A bug: keep the lease so the instance is retried only when the lease expires
            # (after a fix is deployed), never in a hot loop.
            log.exception(
                "instance %s cannot run; it is retried when its lease expires", instance_id
            )
        finally:
            self._free(instance_id)
        if blocked and self._on_finished is not None:
            self._on_finished(executor)  # wake result() waiting for it in this process

    def _block(self, record: InstanceRecord, exc: NonDeterminismError) -> bool:
        """Park an instance whose replay broke as ``blocked``, with the mismatch as its error:
        retried when a worker starts and every ``blocked_retry_interval`` (after a fix)."""
        log.error(
            "instance %s is blocked: %s (it is replayed again when a worker starts and every "
            "%g s: deploy a fix)",
            record.instance_id,
            exc,
            self.blocked_retry_interval,
        )
        error = to_builtins(error_info(exc, retryable=False))
        error.update(step=exc.step, expected=exc.expected, actual=exc.actual, location=exc.location)
        try:
            done = self.storage.block(
                record.instance_id,
                self.owner,
                error,
                now=self.clock.time(),
                token=record.lease_token,
            )
        except ReplayKitError:
            log.exception("could not mark %s blocked", record.instance_id)
            return False
        if done:
            self.hooks.emit("workflow_blocked", record.instance_id, record.workflow, exc)
        return done

    def _retry_blocked(self, now: float) -> None:
        """Replay blocked instances again: at start (a deploy) and every interval."""
        if now < self._next_blocked_retry:
            return
        self._next_blocked_retry = now + self.blocked_retry_interval
        try:
            count = self.storage.retry_blocked(now=now, workflows=sorted(self.registry.workflows))
        except ReplayKitError:
            log.exception("retrying blocked instances failed")
            return
        if count:
            log.info("replaying %d blocked instance(s) again", count)
            self._wake.set()

    def release(self, instance_id: str) -> None:
        try:
            self.storage.release(instance_id, self.owner)
        except ReplayKitError:
            log.exception("could not release %s", instance_id)

    def heartbeat_now(self, instance_id: str) -> None:
        lost = self.storage.heartbeat(
            [instance_id], self.owner, lease_seconds=self.lease_seconds, now=self.clock.time()
        )
        if lost:
            self._mark_lost(lost)

    def _mark_lost(self, ids: list[str], only: dict[str, InstanceExecutor] | None = None) -> None:
        """Fence the executors of ``ids`` (with ``only``: if still the ones it names)."""
        with self._lock:
            for instance_id in ids:
                executor = self._active.get(instance_id)
                if executor is None:
                    continue
                if only is not None and only.get(instance_id) is not executor:
                    continue
                executor.lost = True

    def holds(self, instance_id: str) -> bool:
        """Whether this worker is running ``instance_id`` right now (and has not lost it: a
        fenced executor's instance is another worker's)."""
        with self._lock:
            if instance_id not in self._active:
                return False
            executor = self._active[instance_id]
            return executor is None or not executor.lost

    def active_count(self) -> int:
        with self._lock:
            return len(self._active)

    # ------------------------------------------------------------------ loops

    def _dispatch_loop(self) -> None:
        while not self.stopping:
            self._wake.clear()
            names = sorted(self.registry.workflows)
            with self._lock:
                free = self.concurrency - len(self._active) if self._hold is not None else 0
                running = list(self._active)
            claimed: list[InstanceRecord] = []
            if free > 0 and self.queues:
                self._admit(free, names)
            if free > 0:
                try:
                    claimed = self.storage.claim(
                        self.owner,
                        limit=free,
                        lease_seconds=self.lease_seconds,
                        now=self.clock.time(),
                        workflows=names,
                        exclude=running,  # never claim what this worker runs
                    )
                except ReplayKitError:
                    log.exception("claiming instances failed")
            for record in claimed:
                self._start_claimed(record)
            if claimed and len(claimed) == free:
                continue
            self._wake.wait(self._idle_wait())

    def _admit(self, free: int, names: list[str]) -> None:
        """The admission step: make up to ``free`` queued instances pending (the claim that
        follows takes them), as the queues' limits allow."""
        try:
            result = self.storage.admit(
                self.owner, queues=self.queues, limit=free, now=self.clock.time(), workflows=names
            )
        except ReplayKitError:
            log.exception("admitting queued instances failed")
            return
        self._admit_again_at = result.retry_at

    def _idle_wait(self) -> float:
        """How long the dispatcher sleeps when idle: the poll interval, or less when a queue's
        rate limit lets the next instance start sooner."""
        again = self._admit_again_at
        left = None if again is None else again - self.clock.time()
        if left is None or left <= 0:  # none, or seen already (no free slot to admit into)
            self._admit_again_at = None
            return self.poll_interval
        return min(self.poll_interval, left)

    def _start_claimed(self, record: InstanceRecord) -> None:
        """Run a claimed instance, unless this worker already runs it (an executor that started
        after the claim was asked for): that one keeps its slot and its place in the heartbeat,
        and the claim is run when it ends."""
        instance_id = record.instance_id
        with self._lock:
            if instance_id in self._active:
                self._after[instance_id] = record
                return
            self._active[instance_id] = None
        self.submit(record)

    def _timer_loop(self) -> None:
        while not self.stopping:
            self._timer_wake.clear()
            now = self.clock.time()
            self._retry_blocked(now)
            try:
                woken = self.storage.fire_due_timers(now=now)
                started, next_tick = fire_schedules(self.storage, now)  # schedules tick here too
                if woken or started:
                    self._wake.set()
                next_at = self.storage.next_timer_at()
                next_at = next_tick if next_at is None else min(next_at, next_tick or next_at)
            except ReplayKitError:
                log.exception("firing timers failed")
                next_at = None
            with self._lock:
                self._next_timer = next_at
            delay = self.poll_interval if next_at is None else next_at - self.clock.time()
            if delay > 0:
                self._timer_wake.wait(min(delay, self.poll_interval))

    def _heartbeat_loop(self) -> None:
        interval = max(self.lease_seconds / 3.0, 0.05)
        while not self._stopped.wait(interval):
            if not self.stopping:
                self._heartbeat_once()

    def _heartbeat_once(self) -> None:
        """Extend the leases of the running executors; mark lost those whose lease is gone."""
        with self._lock:
            sent = {i: e for i, e in self._active.items() if e is not None}
        if not sent:
            return
        try:
            lost = self.storage.heartbeat(
                list(sent), self.owner, lease_seconds=self.lease_seconds, now=self.clock.time()
            )
        except ReplayKitError:
            log.exception("heartbeat failed")
            return
        if lost:
            # Only the executors the heartbeat was sent for: an instance that finished (or
            # parked) meanwhile is reported lost, and may already run again here under a new
            # claim whose executor must not be fenced by this stale answer.
            self._mark_lost(lost, only=sent)

    def _liveness_loop(self) -> None:
        while not self._stopped.wait(self.liveness_interval):
            if self.stopping:
                return
            hold = self._hold
            if hold is None or not hold.alive():
                self._fence(hold)
            self._reap()

    def _reap(self) -> None:
        """Take over the instances of dead workers: they are pending now; claim them."""
        try:
            released = self.storage.reap_dead_workers()
        except ReplayKitError:
            log.exception("looking for dead workers failed")
            return
        if released:
            log.warning("taking over %d instance(s) of dead workers", len(released))
            self._wake.set()

    def _fence(self, lost: WorkerHold | None) -> None:
        """This worker's hold is gone: the others take its instances over. Stop every executor
        (none commits again under the old identity) and register again under a new owner id."""
        if lost is not None:
            log.error(
                "worker %s lost its liveness hold (its database connection died): its "
                "instances are taken over; it stops them and registers again",
                lost.worker_id,
            )
            with self._lock:
                self._hold = None
                for executor in self._active.values():
                    if executor is not None:
                        executor.lost = True
            try:
                lost.release()  # stays registered, dead: the others release its instances
            except ReplayKitError:
                log.exception("could not give up the lost hold of %s", lost.worker_id)
        owner = f"{self._name}-{uuid.uuid4().hex[:6]}"
        try:
            hold = self.storage.register_worker(owner, now=self.clock.time())
        except ReplayKitError:
            log.exception("could not register worker %s; trying again", owner)
            return
        with self._lock:
            self.owner, self._hold = owner, hold
        self._wake.set()

    def _listen_loop(self) -> None:
        while not self.stopping:
            try:
                if self.storage.wait_for_wakeup(0.5):
                    self._wake.set()
                    self._timer_wake.set()
            except ReplayKitError:
                log.exception("listening for notifications failed")
                self._stopped.wait(self.poll_interval)

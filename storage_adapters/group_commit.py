"""Group commit: the small write units of many threads committed in ONE transaction.

On SQLite every transaction is one fsync of the WAL and writers take turns on one lock, so when
many workflows run at once their steps queue for the disk. :class:`GroupCommit` lets them share
the fsync: a thread that wants to write a unit of work (a step, a new instance) queues it; if no
batch is being written it leads one, writing every queued unit in one transaction, each inside
its own savepoint, so one unit that fails (a lost lease, a duplicate) is rolled back alone and
the others commit. Threads that queue while a batch is being written are taken by the next
batch. Nothing waits for a timer: a unit that finds the committer idle is written at once, so a
lone workflow pays nothing.

A transactional activity that never touches ``ctx.session`` commits its step through here too
(``sql_transaction``); one that does writes its step in its own transaction.

Durability is unchanged: :meth:`GroupCommit.submit` returns only after the transaction holding
the unit has committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from replaykit.core.errors import StorageError

from .sql_steps import SqlTx

T = TypeVar("T")


class Writer(Protocol):
    """What :class:`GroupCommit` needs from its adapter (``SqlStorage`` provides it)."""

    url: str

    @property
    def db_errors(self) -> tuple[type[BaseException], ...]: ...

    def _run(self, work: Callable[[SqlTx], T], *, write: bool = ..., exclusive: bool = ...) -> T:
        """Run ``work`` in one write transaction, retrying busy/deadlock errors."""

    def _is_retryable(self, exc: BaseException) -> bool: ...


class _Unit(Generic[T]):
    __slots__ = ("done", "error", "result", "wake", "work")

    def __init__(self, work: Callable[[SqlTx], T]) -> None:
        self.work = work
        self.result: T | None = None
        self.error: BaseException | None = None
        self.done = False
        # held until the unit is done or its thread is to lead the next batch: each waiting
        # thread is woken once, by name (no broadcast for every batch)
        self.wake = threading.Lock()
        self.wake.acquire()

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class GroupCommit:
    """Commits the units of work queued by many threads together (see the module docstring).

    ``storage`` supplies the transaction (``_run``, with its busy/deadlock retries) and the
    savepoint statements."""

    def __init__(self, storage: Writer) -> None:
        self._storage = storage
        self._mutex = threading.Lock()
        self._queue: list[_Unit[Any]] = []
        self._leading = False
        #: transactions written and units they held (benchmarks and tests read these)
        self.batches = 0
        self.units = 0

    def submit(self, work: Callable[[SqlTx], T]) -> T:
        """Run ``work`` in a write transaction, possibly together with other threads' units;
        return its result (or raise its error) once that transaction has committed."""
        with self._mutex:
            lone = not self._leading
            if lone:
                self._leading = True
        if lone:  # nobody writes: this unit is the batch, in a transaction of its own
            try:
                return self._storage._run(work)
            finally:
                with self._mutex:
                    self.batches += 1
                    self.units += 1
                    if self._queue:
                        self._queue[0].wake.release()  # hand the lead to the oldest waiting unit
                    else:
                        self._leading = False
        unit = _Unit(work)
        with self._mutex:
            self._queue.append(unit)
            follow, self._leading = self._leading, True
        if follow:
            unit.wake.acquire()  # until the unit is done, or this thread leads the next batch
            if unit.done:
                return unit.outcome()
        with self._mutex:
            batch, self._queue = self._queue, []
        try:
            self._write(batch)
        finally:
            with self._mutex:
                self.batches += 1
                self.units += len(batch)
                for queued in batch:
                    queued.done = True
                    if queued is not unit:
                        queued.wake.release()
                if self._queue:
                    self._queue[0].wake.release()  # hand the lead to the oldest waiting unit
                else:
                    self._leading = False
        return unit.outcome()

    def _write(self, batch: list[_Unit[Any]]) -> None:
        storage = self._storage
        single = len(batch) == 1

        def work(tx: SqlTx) -> None:
            for unit in batch:
                unit.result, unit.error = None, None  # a retried transaction starts over
                if single:  # the transaction is the unit's own: its error rolls it back
                    unit.result = unit.work(tx)
                    continue
                tx.exec("SAVEPOINT rk_unit")
                try:
                    unit.result = unit.work(tx)
                except storage.db_errors as exc:
                    if storage._is_retryable(exc):
                        raise  # busy/deadlock: the whole batch is retried
                    tx.exec("ROLLBACK TO SAVEPOINT rk_unit")
                    unit.error = StorageError(f"database error ({storage.url}): {exc}")
                except Exception as exc:  # LeaseLost, WorkflowNotFound, ...: this unit only
                    tx.exec("ROLLBACK TO SAVEPOINT rk_unit")
                    unit.error = exc
                tx.exec("RELEASE SAVEPOINT rk_unit")

        try:
            storage._run(work)
        except BaseException as exc:  # the transaction failed: nothing in it was committed
            for unit in batch:
                unit.error = exc

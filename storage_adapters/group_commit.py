"""Group commit: the small write units of many threads committed in ONE transaction.

On SQLite every transaction is one fsync of the WAL and writers take turns on one lock, so when
many workflows run at once their steps queue for the disk. :class:`GroupCommit` lets them share
the fsync: a thread that wants to write a unit of work (a step, a new instance) queues it; if no
batch is being written it leads one, writing every queued unit in one transaction, each inside
its own savepoint, so one unit that fails (a lost lease, a duplicate) is rolled back alone and
the others commit. Threads that queue while a batch is being written are taken by the next
batch. Nothing waits for a timer: a unit that finds the committer idle is written at once, so a
lone workflow pays nothing.

:class:`GroupedTransaction` is what ``transaction()`` yields on such an adapter: it begins a
real transaction only when the activity touches ``ctx.session``; otherwise the step is handed to
the group committer when the block exits (and, as in any transaction, an exception raised inside
the block discards it).

Durability is unchanged: :meth:`GroupCommit.submit` returns only after the transaction holding
the unit has committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from replaykit.core.errors import StorageError
from replaykit.storage import CommitResult, StepCommit

from . import sql_commit
from .sql_steps import SqlTx

if TYPE_CHECKING:
    from .sql_common import SqlStorage

T = TypeVar("T")


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

    def __init__(self, storage: SqlStorage) -> None:
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
                if single:  # the transaction itself is the savepoint
                    try:
                        unit.result = unit.work(tx)
                    except storage.db_errors:
                        raise
                    except Exception as exc:
                        unit.error = exc
                        raise _UnitFailed from exc
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
        except _UnitFailed:
            pass  # the one unit's error is recorded; its transaction rolled back
        except BaseException as exc:  # the transaction failed: nothing in it was committed
            for unit in batch:
                unit.error = exc


class _UnitFailed(Exception):
    """Rolls back a one-unit batch whose unit raised (its error is kept on the unit)."""


class GroupedTransaction:
    """What ``transaction()`` yields on an adapter with group commit (see the module docstring).

    The :class:`CommitResult` that :meth:`commit_step` returns for a deferred step is filled in
    when the block exits."""

    def __init__(self, storage: SqlStorage) -> None:
        self._storage = storage
        self._stack: ExitStack | None = None
        self._tx: SqlTx | None = None
        self._deferred: tuple[StepCommit, CommitResult] | None = None

    @property
    def session(self) -> Any:
        """The adapter's session, inside a transaction that commits with the step."""
        return self._storage._session(self._begin().conn)

    def _begin(self) -> SqlTx:
        if self._tx is None:
            stack = ExitStack()
            conn = stack.enter_context(self._storage._begin(write=True))
            self._stack, self._tx = stack, SqlTx(self._storage, conn)
            if self._deferred is not None:  # a step deferred before the transaction goes first
                commit, placeholder = self._deferred
                self._deferred = None
                done = self._apply(self._tx, commit)
                placeholder.inbox, placeholder.released = done.inbox, done.released
        return self._tx

    def _apply(self, tx: SqlTx, commit: StepCommit) -> CommitResult:
        try:
            return sql_commit.apply_commit(tx, commit)
        except self._storage.db_errors as exc:
            raise StorageError(f"database error ({self._storage.url}): {exc}") from exc

    def commit_step(self, commit: StepCommit) -> CommitResult:
        if self._tx is None and self._deferred is None:
            placeholder = CommitResult()
            self._deferred = (commit, placeholder)
            return placeholder
        return self._apply(self._begin(), commit)

    def _finish(self) -> None:
        """Commit: the begun transaction, or hand the deferred step to the group committer."""
        if self._tx is not None:
            assert self._stack is not None
            self._storage._flush_notifies(self._tx)
            self._tx, stack, self._stack = None, self._stack, None
            stack.close()  # COMMIT
            self._storage.commits += 1
            return
        if self._deferred is not None:
            commit, placeholder = self._deferred
            self._deferred = None
            done = self._storage.commit(commit)  # through the group committer
            placeholder.inbox, placeholder.released = done.inbox, done.released

    def _abandon(self, exc: BaseException) -> None:
        self._deferred = None
        if self._stack is not None:
            self._tx, stack, self._stack = None, self._stack, None
            stack.__exit__(type(exc), exc, exc.__traceback__)  # ROLLBACK


@contextmanager
def grouped_transaction(storage: SqlStorage) -> Iterator[GroupedTransaction]:
    """``transaction()`` for adapters with group commit: errors raised by the caller's code pass
    through unchanged (rolling everything back); the adapter's own database errors become
    StorageError."""
    lazy = GroupedTransaction(storage)
    try:
        yield lazy
    except BaseException as exc:
        lazy._abandon(exc)
        raise
    try:
        lazy._finish()
    except storage.db_errors as exc:
        raise StorageError(f"database error ({storage.url}): {exc}") from exc

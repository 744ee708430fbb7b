"""The transaction of a transactional activity, one class for every SQL adapter: lazy, with an
explicit outcome.

:class:`SqlTransaction` begins a database transaction only when the activity first reads
``session``. Then :meth:`SqlTransaction.commit` applies the step in that transaction (so the
activity's writes and its recorded result commit together, or not at all) and commits it. An
activity that never touches the session opens nothing: its step is committed by the adapter's
ordinary ``commit`` — PostgreSQL's one-statement fast path, SQLite's group commit, or a plain
transaction — so it costs what a non-transactional activity costs.

Nothing is deferred: :meth:`commit` returns the real :class:`~replaykit.storage.CommitResult`
once the step is durable, and the transaction ends with it. :meth:`rollback` is the other
explicit end; leaving the ``with`` block with neither rolls back.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Protocol

from replaykit.core.errors import StorageError
from replaykit.storage import CommitResult, StepCommit

from .sql_steps import Begun, Dialect, SqlTx, at_write


class Host(Dialect, Protocol):
    """What :class:`SqlTransaction` needs from its adapter (``SqlStorage`` provides it)."""

    url: str
    commits: int

    def _open(self, *, write: bool, exclusive: bool = False) -> Begun: ...

    def _session(self, conn: Any) -> Any: ...

    def _commit_in(self, tx: SqlTx, commit: StepCommit) -> CommitResult: ...

    def _flush_notifies(self, tx: SqlTx) -> None: ...

    def commit(self, commit: StepCommit) -> CommitResult: ...


class SqlTransaction:
    """What ``SqlStorage.transaction()`` yields on every SQL adapter (see the module docstring).

    A context manager: ``__exit__`` rolls back a transaction that was neither committed nor
    rolled back (an exception passes through unchanged)."""

    __slots__ = ("_begun", "_ended", "_host", "_session", "_tx")

    def __init__(self, host: Host) -> None:
        self._host = host
        self._begun: Begun | None = None
        self._tx: SqlTx | None = None
        self._session: Any = None
        self._ended = False

    def __enter__(self) -> SqlTransaction:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._ended:
            self._end()

    @property
    def session(self) -> Any:
        """The adapter's session inside this transaction, begun on first use."""
        self._check_open()
        if self._session is None:
            self._session = self._host._session(self._begin().conn)
        return self._session

    def commit(self, commit: StepCommit) -> CommitResult:
        """Apply ``commit`` with the session's writes and commit (see the module docstring)."""
        self._check_open()
        tx, begun = self._tx, self._begun
        if tx is None or begun is None:
            self._end()
            return self._host.commit(commit)  # nothing begun: the ordinary path
        host = self._host
        try:
            result = host._commit_in(tx, at_write(commit, time.monotonic()))
            host._flush_notifies(tx)
        except BaseException as exc:
            self._end()
            if isinstance(exc, host.db_errors):
                raise StorageError(f"database error ({host.url}): {exc}") from exc
            raise  # LeaseLost, and anything that is not the database's
        self._ended, self._begun, self._tx = True, None, None
        try:
            begun.commit()
        except host.db_errors as exc:
            raise StorageError(f"database error ({host.url}): {exc}") from exc
        host.commits += 1
        return result

    def rollback(self) -> None:
        """Discard the session's writes; no step is recorded."""
        self._check_open()
        self._end()

    def _begin(self) -> SqlTx:
        self._check_open()
        if self._tx is None:
            host = self._host
            try:
                self._begun = host._open(write=True)
            except host.db_errors as exc:
                raise StorageError(f"database error ({host.url}): {exc}") from exc
            self._tx = SqlTx(host, self._begun.conn)
        return self._tx

    def _end(self) -> None:
        """End the transaction, rolling back whatever was begun."""
        self._ended = True
        begun, self._begun, self._tx = self._begun, None, None
        if begun is not None:
            begun.rollback()

    def _check_open(self) -> None:
        if self._ended:
            raise StorageError(
                "this activity's transaction has ended (committed or rolled back): ctx.session "
                "can only be used while the activity runs"
            )

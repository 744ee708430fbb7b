"""The SQLite adapter: one file (or a shared in-memory database), WAL, busy retries.

Durability with ``journal_mode=WAL``:

* ``synchronous="FULL"`` (the default): every committed transaction is synced to disk before
  ``commit`` returns, so a power loss or OS crash loses nothing that was acknowledged.
* ``synchronous="NORMAL"``: the WAL is synced only at checkpoints, so the last transactions
  before a power loss/OS crash may roll back (they never half-apply, and the database is never
  corrupted); a crash of the *process* alone loses nothing. Faster; choose it when re-running
  the last steps after a power cut is acceptable (activities are then at-least-once).

Group commit (``group_commit=True``, the default): steps and creations of concurrent workflows
that queue while a write is in progress share the next transaction, one savepoint each (see
``storage_adapters.group_commit``). A transactional activity begins its own transaction only when
it touches ``ctx.session`` (``storage_adapters.sql_transaction``).

Liveness (``storage_adapters.sql_liveness``): each worker holds an ``flock`` on a file of its own
in ``<database>-workers/`` for its whole life; the kernel frees it the moment the process dies,
and a worker that can lock another's file knows that one is dead. ``flock``, not ``lockf``/POSIX
``fcntl`` record locks: those belong to the process, so a second worker (or a reaper) in the
same process would neither see the lock nor keep it when closing its own descriptor; ``flock``
belongs to the open file, which is what a per-worker lock needs. (On NFS, keep the database and
its workers on one host, as SQLite itself requires.)

Concurrency: every write runs in ``BEGIN IMMEDIATE``, so writers are serialized by SQLite itself
(the shared algorithms need no row locks here). A writer that meets a busy database waits
``busy_timeout`` seconds inside SQLite and is then retried with backoff, so "database is locked"
never reaches users. Every write transaction runs on one *writer* connection, which a
thread takes for the whole of its transaction (the pages a write changed stay cached for
the next); reads run on each thread's own connection (``threading.local``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import sqlite_utils

from replaykit.core.errors import StorageError
from replaykit.storage import CommitResult, StepCommit

from ..group_commit import GroupCommit
from ..sql_commit import apply_simple, is_simple
from ..sql_common import SqlStorage
from ..sql_liveness import Hold, Registration
from ..sql_steps import Begun, SqlTx

_RETRYABLE_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_BEGIN_EXCLUSIVE, _BEGIN_WRITE, _BEGIN_READ = "BEGIN EXCLUSIVE", "BEGIN IMMEDIATE", "BEGIN DEFERRED"
_SYNCHRONOUS = {"OFF", "NORMAL", "FULL", "EXTRA"}


def parse_sqlite_url(url: str) -> tuple[str, bool]:
    """``sqlite:///rel.db`` -> ("rel.db", False); ``sqlite:////abs.db`` -> ("/abs.db", False);
    ``sqlite://:memory:`` -> (":memory:", True)."""
    rest = url.split(":", 1)[1].removeprefix("//").split("?", 1)[0]
    if rest in (":memory:", "/:memory:", ""):
        return ":memory:", True
    if not rest.startswith("/"):
        raise ValueError(f"unsupported SQLite URL {url!r}: use sqlite:///path.db")
    return rest[1:], False


def bind_none_and_bytes_directly() -> None:
    """Let the ``sqlite3`` module bind ``None`` and ``bytes`` parameters without its adapter
    search.

    The module binds ``int``, ``float``, ``str`` and ``bytearray`` parameters as they are; any
    other one, ``None`` and ``bytes`` included, first goes through its adapter lookup, which on
    a miss builds and throws away an ``AttributeError`` message (about 0.6 µs per parameter; a
    workflow's statements bind dozens of them). An identity adapter for each of the two types
    answers the lookup at once, and they are bound as before (NULL, BLOB). Registered only when
    the process has no adapter of its own for that type (``sqlite3.register_adapter`` is global).
    """
    if (type(None), sqlite3.PrepareProtocol) not in sqlite3.adapters:
        sqlite3.register_adapter(type(None), _NO_ADAPTER.get)
    if (bytes, sqlite3.PrepareProtocol) not in sqlite3.adapters:
        sqlite3.register_adapter(bytes, bytes)


_NO_ADAPTER: dict[Any, None] = {}  # ``.get(x)`` is None: the identity of None, in C


def is_busy(exc: BaseException) -> bool:
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _RETRYABLE_CODES
    return "locked" in str(exc) or "busy" in str(exc)


class _Begun:
    """A read transaction this adapter began on a thread's connection (see
    ``sql_steps.Begun``)."""

    __slots__ = ("conn", "storage")

    def __init__(self, storage: SqliteStorage, conn: sqlite3.Connection) -> None:
        self.storage = storage
        self.conn = conn

    def commit(self) -> None:
        conn = self.conn
        try:
            self.storage._execute_busy(conn, "COMMIT")  # busy: retried (a reader still ends)
        except BaseException:
            self.rollback()
            raise

    def rollback(self) -> None:
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                self.storage._discard(self.conn)  # closing it ends the transaction


class _Written(_Begun):
    """A write transaction on the storage's writer connection: its end, committed or rolled
    back, hands the writer to the next thread."""

    __slots__ = ("_open",)

    def __init__(self, storage: SqliteStorage, conn: sqlite3.Connection) -> None:
        super().__init__(storage, conn)
        self._open = True

    def commit(self) -> None:
        super().commit()  # a failed COMMIT rolls back, which hands the writer on
        self._hand_on()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._hand_on()

    def _hand_on(self) -> None:
        if self._open:
            self._open = False
            self.storage._release_writer()


class _Joined:
    """A read that runs inside the thread's open transaction: its end is that transaction's."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass


class _FileHold:
    """A worker's liveness lock: an exclusive ``flock`` on its own file (see the module
    docstring). ``lock_key`` is the file's path."""

    def __init__(self, path: str) -> None:
        self.lock_key = path
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(fd)
            raise
        self._fd: int | None = fd

    def alive(self) -> bool:
        return self._fd is not None

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            _unlink(self.lock_key)
            os.close(fd)


class _ProcessHold:
    """The hold of a worker on an in-memory database, which lives and dies with this process."""

    lock_key = ":memory:"

    def __init__(self) -> None:
        self._held = True

    def alive(self) -> bool:
        return self._held

    def close(self) -> None:
        self._held = False


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _lock_if_free(path: str) -> int | None:
    """A descriptor of ``path`` holding its ``flock`` if nobody else held it (None: held);
    -1 when the file is gone."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return -1
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class SqliteStorage(SqlStorage):
    """Storage on SQLite >= 3.35 (``RETURNING``, ``ON CONFLICT``)."""

    notifies = False
    migrations_package = "storage_adapters.sqlite"
    db_errors = (sqlite3.Error,)

    def __init__(
        self,
        url: str,
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 5.0,
        retry_seconds: float = 30.0,
        group_commit: bool = True,
    ) -> None:
        if synchronous.upper() not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {sorted(_SYNCHRONOUS)}")
        bind_none_and_bytes_directly()
        self.url = url
        self.synchronous = synchronous.upper()
        self.busy_timeout = busy_timeout
        self.retry_seconds = retry_seconds
        path, self.memory = parse_sqlite_url(url)
        self._target = f"file:replaykit-{uuid.uuid4().hex}?mode=memory&cache=shared"
        if not self.memory:
            self._target = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: dict[int, tuple[threading.Thread, sqlite3.Connection]] = {}
        self._closed = False
        self._keeper = self._connect() if self.memory else None
        #: every write transaction of this object runs on one connection, taken by one thread
        #: at a time (see :meth:`_open`)
        self._writer: sqlite_utils.Database | None = None
        self._writer_lock = threading.Lock()
        self._writer_thread: int | None = None  # the thread whose write transaction is open
        self.committer = GroupCommit(self) if group_commit else None
        self._workers: dict[str, Registration] = {}
        #: where the workers' lock files live: next to the database
        self.workers_dir = f"{os.path.abspath(path)}-workers"

    # -- connections ------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._target,
            uri=self.memory,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            if not self.memory:
                self._retry_busy(lambda: conn.execute("PRAGMA journal_mode = WAL"))
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def _database(self) -> sqlite_utils.Database:
        """This thread's connection, wrapped by sqlite-utils (opened on first use)."""
        db: sqlite_utils.Database | None = getattr(self._local, "db", None)
        if db is not None:
            return db
        if self._closed:
            raise RuntimeError(f"storage {self.url} is closed")
        conn = self._connect()
        db = sqlite_utils.Database(conn, execute_plugins=False)
        self._local.db = db
        with self._lock:
            self._prune_dead_threads()
            self._connections[threading.get_ident()] = (threading.current_thread(), conn)
        return db

    def _prune_dead_threads(self) -> None:
        for ident, (thread, conn) in list(self._connections.items()):
            if not thread.is_alive():
                conn.close()
                del self._connections[ident]

    def _discard(self, conn: sqlite3.Connection) -> None:
        """Close a connection that cannot be trusted any more; its thread (or, for the writer,
        the next write) opens a new one."""
        writer = self._writer
        if writer is not None and writer.conn is conn:
            self._writer = None
        with self._lock:
            for ident, (_thread, known) in list(self._connections.items()):
                if known is conn:
                    del self._connections[ident]
        db: sqlite_utils.Database | None = getattr(self._local, "db", None)
        if db is not None and db.conn is conn:
            del self._local.db
        conn.close()

    def close(self) -> None:
        self._release_workers()
        with self._lock:
            self._closed = True
            for _thread, conn in self._connections.values():
                conn.close()
            self._connections.clear()
            if self._keeper is not None:
                self._keeper.close()
                self._keeper = None
            writer, self._writer = self._writer, None
            if writer is not None:
                writer.conn.close()
        self._local = threading.local()

    # -- dialect hooks ----------------------------------------------------------------------
    def _execute_busy(self, conn: sqlite3.Connection, sql: str) -> None:
        """Run ``sql`` (BEGIN, COMMIT); only when SQLite reports busy, retry it as
        :meth:`_retry_busy` does (no closure is made on the common path)."""
        try:
            conn.execute(sql)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            self._retry_busy(lambda: conn.execute(sql))

    def _retry_busy(self, action: Any) -> Any:
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.002
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.1)

    def _open(self, *, write: bool, exclusive: bool = False) -> Begun:
        """Reads run on the thread's own connection; every write on the one *writer*
        connection, which a thread takes for the whole of its transaction. SQLite lets one
        transaction write at a time anyway; one connection for all of them means the pages a
        write changed are still in the cache of the next one (a write on another connection
        would first look up and read back what the previous one changed), and the writes of
        this process queue on a lock instead of SQLite's busy handler."""
        if self._writer_thread == threading.get_ident():  # this thread's write is open
            writer = self._writer
            assert writer is not None
            if write:
                raise sqlite3.OperationalError(
                    "this thread already has a replaykit transaction open: commit its step "
                    "through it instead of a separate write"
                )
            return _Joined(writer.conn)  # a read inside the thread's write sees its writes
        if write:
            return self._take_writer(_BEGIN_EXCLUSIVE if exclusive else _BEGIN_WRITE)
        conn = self._database().conn
        if conn.in_transaction:
            return _Joined(conn)  # a read inside the thread's read
        self._execute_busy(conn, _BEGIN_READ)
        return _Begun(self, conn)

    def _take_writer(self, begin: str) -> _Written:
        # waited for as long as a busy database is retried (SQLite's own wait included)
        if not self._writer_lock.acquire(timeout=self.retry_seconds):
            raise sqlite3.OperationalError(
                "database is locked: another thread of this process kept its write transaction "
                f"open for {self.retry_seconds} s"
            )
        try:
            writer = self._writer
            if writer is None:
                if self._closed:
                    raise RuntimeError(f"storage {self.url} is closed")
                writer = self._writer = sqlite_utils.Database(
                    self._connect(), execute_plugins=False
                )
            self._execute_busy(writer.conn, begin)
        except BaseException:
            self._writer_lock.release()
            raise
        self._writer_thread = threading.get_ident()
        return _Written(self, writer.conn)

    def _release_writer(self) -> None:
        self._writer_thread = None
        self._writer_lock.release()

    def _execute(self, conn: Any, sql: str, params: Sequence[Any]) -> Any:
        if self.memory:  # shared-cache table locks are not covered by busy_timeout
            return self._retry_busy(lambda: conn.execute(sql, tuple(params)))
        return conn.execute(sql, tuple(params))

    def _is_retryable(self, exc: BaseException) -> bool:
        return is_busy(exc)

    def _commit_in(self, tx: SqlTx, commit: StepCommit) -> CommitResult:
        """A simple step (``sql_commit.is_simple``) runs its few statements straight on the
        connection: ``BEGIN IMMEDIATE`` holds the write lock, so no row lock is waited for."""
        if not is_simple(commit):
            return super()._commit_in(tx, commit)
        conn = tx.conn
        if self.memory:
            return apply_simple(lambda sql, params: self._execute(conn, sql, params), commit)
        return apply_simple(conn.execute, commit)

    # -- liveness ---------------------------------------------------------------------------
    def _take_hold(self, worker_id: str) -> Hold:
        if self.memory:
            return _ProcessHold()
        name = hashlib.sha1(worker_id.encode()).hexdigest()[:24]
        path = os.path.join(self.workers_dir, f"{name}.lock")
        try:
            return _FileHold(path)
        except OSError as exc:
            raise StorageError(
                f"cannot take the liveness lock {path} of worker {worker_id!r}: {exc}"
            ) from exc

    def _find_dead(self, rows: list[dict[str, Any]]) -> tuple[list[str], Callable[[], None]]:
        """Workers whose file nobody holds; their files stay locked by us until ``done``, which
        removes them (after their instances were released)."""
        if self.memory:  # every worker of this database lives in this process, in _workers
            return [row["worker_id"] for row in rows], lambda: None
        dead: list[str] = []
        taken: list[tuple[int, str]] = []
        for row in rows:
            fd = _lock_if_free(str(row["lock_key"]))
            if fd is None:
                continue
            dead.append(row["worker_id"])
            if fd >= 0:
                taken.append((fd, str(row["lock_key"])))

        def done() -> None:
            for fd, path in taken:
                _unlink(path)
                os.close(fd)

        return dead, done

    def _session(self, conn: Any) -> sqlite_utils.Database:
        writer = self._writer
        assert writer is not None and writer.conn is conn  # a session is inside a write
        return writer

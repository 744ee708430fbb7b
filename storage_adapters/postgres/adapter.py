"""The PostgreSQL adapter: many worker processes and machines on one database.

* Connections come from ``sql_pool.ConnectionPool`` (newest first, so the connection a thread
  gets is the one whose prepared statements and PL/pgSQL plans are warm); every unit of work is
  one transaction (a single statement runs in autocommit mode).
* Claims (instances, outbox rows, competing messages) use ``FOR UPDATE SKIP LOCKED``, so workers
  never wait on each other's rows and never take the same row.
* Deliveries and wait registrations on the same event type / channel are serialized with
  ``pg_advisory_xact_lock(hashtext(key))``, so a wait registered while a ``send_event`` commits
  either sees the event or is seen by it.
* Every transaction that makes work available (a runnable instance, a timer, an outbox row) sends
  ``pg_notify('replaykit', kind)`` inside the same transaction; PostgreSQL delivers it at commit,
  never before. :meth:`PostgresStorage.wait_for_wakeup` LISTENs on one dedicated connection.
* Tables are created unqualified, in the first schema of the connection's ``search_path``.
* Liveness (``storage_adapters.sql_liveness``): each worker holds the session-level
  ``pg_advisory_lock(key)`` on a dedicated connection (``application_name`` "replaykit worker
  <id>") for its whole life; PostgreSQL frees it when that connection ends, so a worker whose
  key another session can lock (``pg_try_advisory_xact_lock``) is dead.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec
import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from replaykit.core.errors import StorageError
from replaykit.storage import (
    CommitResult,
    Handoff,
    InboxItem,
    InstanceRecord,
    StepCommit,
    StoredEvent,
    TimerSpec,
)

from .. import sql_queues
from ..sql_commit import is_simple
from ..sql_common import SqlStorage, instance_from_row, safe_url
from ..sql_liveness import ConnectionHold, Hold, Registration
from ..sql_pool import ConnectionPool
from ..sql_steps import Begun, SqlTx, at_write, lease_end, placeholders
from . import fastpath
from .prepared import PooledConnection

T = TypeVar("T")
NOTIFY_CHANNEL = "replaykit"
_RETRYABLE = (
    psycopg.OperationalError,  # a connection the server dropped: the pool hands out a new one
    pg_errors.DeadlockDetected,
    pg_errors.SerializationFailure,
    pg_errors.LockNotAvailable,
)


def check_reachable(url: str, timeout: float) -> None:
    """Connect once, so that an unreachable server, a missing database or an unknown host fails
    at once with the driver's reason (the pool would retry for 30 s and only log it).
    ``timeout`` applies unless the URL sets ``connect_timeout``."""
    try:
        params = conninfo_to_dict(url)
        extra = {} if "connect_timeout" in params else {"connect_timeout": max(2, round(timeout))}
        psycopg.connect(url, **extra).close()
    except psycopg.Error as exc:
        raise StorageError(f"cannot connect to PostgreSQL at {safe_url(url)}: {exc}") from exc


def _connect(url: str) -> PooledConnection:
    return PooledConnection.connect(url, autocommit=True)


def _close(conn: PooledConnection) -> None:
    conn.close()


def _reusable(conn: PooledConnection) -> bool:
    """Whether ``conn`` is idle and usable; an open transaction (after a failed COMMIT) is
    rolled back first."""
    if conn.pgconn.transaction_status == TransactionStatus.IDLE and not conn.closed:
        return True  # the common case, read from libpq without building conn.info
    if conn.broken or conn.closed:
        return False
    status = conn.info.transaction_status
    if status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            return False
        status = conn.info.transaction_status
    return status == TransactionStatus.IDLE


class _Begun:
    """A pooled connection, in a transaction when ``write`` (see ``sql_steps.Begun``)."""

    __slots__ = ("conn", "pool", "write")

    def __init__(
        self,
        pool: ConnectionPool[PooledConnection],
        conn: PooledConnection,
        write: bool,
    ) -> None:
        self.pool = pool
        self.conn = conn
        self.write = write

    def commit(self) -> None:
        try:
            if self.write:
                self.conn.execute("COMMIT")
        finally:
            self.pool.put(self.conn, broken=not _reusable(self.conn))

    def rollback(self) -> None:
        try:
            if self.write and not self.conn.closed:
                self.conn.execute("ROLLBACK")
        except psycopg.Error:
            pass  # _reusable tells whether the connection can be used again
        finally:
            self.pool.put(self.conn, broken=not _reusable(self.conn))


class _AdvisoryHold(ConnectionHold):
    """A worker's liveness lock: ``pg_advisory_lock(lock_key)`` held by a dedicated connection
    for as long as it lives (a random 63-bit key)."""

    def __init__(self, url: str, worker_id: str) -> None:
        self.lock_key = secrets.randbits(63)
        conn = psycopg.connect(
            url, autocommit=True, application_name=f"replaykit worker {worker_id}"[:63]
        )
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", [self.lock_key])
        except BaseException:
            conn.close()
            raise
        super().__init__(conn, (psycopg.Error,))

    def _ping(self) -> None:
        self._conn.execute("SELECT 1")


class PostgresStorage(SqlStorage):
    """Storage on PostgreSQL (>= 12) through psycopg 3."""

    notifies = True
    migrations_package = "storage_adapters.postgres"
    db_errors = (psycopg.Error,)
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    statement_age = fastpath.STATEMENT_AGE

    def __init__(
        self,
        url: str,
        *,
        min_pool: int = 1,
        max_pool: int = 10,
        poll_interval: float = 1.0,
        retry_seconds: float = 30.0,
        connect_timeout: float = 5.0,
        pool_timeout: float = 30.0,
    ) -> None:
        self.url = url
        self.poll_interval = poll_interval
        self.retry_seconds = retry_seconds
        self._sql: dict[str, str] = {}
        self._listener: psycopg.Connection[Any] | None = None
        self._schema_prefix = ":"
        self._listen_lock = threading.Lock()
        self._workers: dict[str, Registration] = {}
        check_reachable(url, connect_timeout)
        self._pool: ConnectionPool[PooledConnection] = ConnectionPool(
            lambda: _connect(url),
            _close,
            what="PostgreSQL",
            min_size=min_pool,
            max_size=max_pool,
            timeout=pool_timeout,
        )

    # -- fast paths (see fastpath.py) ---------------------------------------------------------
    def _statement(self, work: Callable[[PooledConnection], T]) -> T:
        """``work(conn)`` sends ONE statement, atomic on its own, so it runs in autocommit mode
        (no BEGIN/COMMIT round trips). The first attempt takes a pooled connection directly (no
        transaction object, no retry loop); a retryable error (a dropped connection, a deadlock)
        hands over to ``_run``'s retries, any other database error is a StorageError."""
        try:
            conn = self._pool.get()
            try:
                result = work(conn)
            except BaseException:
                self._pool.put(conn, broken=not _reusable(conn))
                raise
        except psycopg.Error as exc:
            if not self._is_retryable(exc):
                raise StorageError(f"database error ({self.url}): {exc}") from exc
            return self._run(lambda tx: work(tx.conn), write=False)
        self._pool.put(conn, broken=not _reusable(conn))
        return result

    def create_instance(
        self, record: InstanceRecord, started_event: bytes, deadline: TimerSpec | None = None
    ) -> tuple[InstanceRecord, bool]:
        if record.status == "pending" or deadline is not None:  # the general path: a NOTIFY,
            return super().create_instance(record, started_event, deadline)  # a timer
        created = self._statement(lambda conn: fastpath.create(conn, record, started_event))
        if created:
            self.commits += 1
            return msgspec.structs.replace(record, history_len=1), True
        stored = self.get_instance(record.instance_id)
        assert stored is not None
        return stored, False

    def enqueue(self, record: InstanceRecord, started_event: bytes) -> tuple[InstanceRecord, bool]:
        """Without a dedup key: one autocommit statement (fastpath); with one, the shared path
        (the queue's row lock keeps concurrent enqueues of one key apart)."""
        if record.dedup_key is not None or record.status != "queued":
            return super().enqueue(record, started_event)
        created = self._statement(
            lambda conn: fastpath.enqueue(conn, record, started_event, NOTIFY_CHANNEL)
        )
        if created is None:
            raise sql_queues.unknown_queue(record)
        self.commits += 1
        if created:
            return msgspec.structs.replace(record, history_len=1), True
        stored = self.get_instance(record.instance_id)
        assert stored is not None
        return stored, False

    def commit(self, commit: StepCommit) -> CommitResult:
        if not is_simple(commit):
            return super().commit(commit)
        called = time.monotonic()
        result = self._statement(lambda conn: fastpath.step(conn, at_write(commit, called)))
        self.commits += 1
        return result

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
        """One autocommit statement: UPDATE ... WHERE id IN (SELECT ... SKIP LOCKED)."""
        if workflows is not None and not workflows:
            return []
        called = time.monotonic()
        rows = self._statement(
            lambda conn: fastpath.claim(
                conn,
                owner,
                limit,
                lease_end(now, lease_seconds, called),
                now,
                None if workflows is None else list(workflows),
                list(exclude),
            )
        )
        if rows:
            self.commits += 1
        return [instance_from_row(row) for row in rows]

    def send_event(self, event: StoredEvent, *, now: float) -> tuple[bool, list[str]]:
        """A targeted event is one autocommit call of ``rk_targeted_event`` (fastpath); broadcast
        events take the shared path (advisory lock per type, every waiting instance)."""
        if event.target is None:
            return super().send_event(event, now=now)
        stored, woken, _ = self._statement(lambda conn: fastpath.targeted_event(conn, event, now))
        self.commits += 1
        return stored, woken

    def send_event_and_claim(
        self,
        event: StoredEvent,
        *,
        now: float,
        owner: str,
        lease_seconds: float,
        workflows: Sequence[str],
    ) -> tuple[bool, Handoff | None]:
        """An optional capability the App uses when it has a free worker slot: deliver a
        targeted event and, if that wakes an instance of one of ``workflows`` (the ones the
        caller runs), lease it to ``owner`` in the same statement, which also returns the
        instance's history and inbox. Returns (stored, the hand-off or None)."""
        assert event.target is not None
        called = time.monotonic()
        stored, _, handoff = self._statement(
            lambda conn: fastpath.targeted_event(
                conn,
                event,
                now,
                owner=owner,
                expires=lease_end(now, lease_seconds, called),
                workflows=workflows,
            )
        )
        self.commits += 1
        return stored, handoff

    def load_run(self, instance_id: str) -> tuple[list[bytes], list[InboxItem]]:
        """History and inbox in one round trip."""
        rows = self._statement(lambda conn: fastpath.load_run(conn, instance_id))
        history = [bytes(event) for kind, _, event in rows if kind == 0]
        inbox = [
            InboxItem(id=ident, instance_id=instance_id, event=bytes(event))
            for kind, ident, event in rows
            if kind == 1
        ]
        return history, inbox

    def close(self) -> None:
        self._release_workers()
        with self._listen_lock:
            self._drop_listener()
        self._pool.close()

    # -- dialect hooks ----------------------------------------------------------------------
    def _open(self, *, write: bool, exclusive: bool = False) -> Begun:
        conn = self._pool.get()
        if write:
            try:
                conn.execute("BEGIN")
            except BaseException:
                self._pool.put(conn, broken=not _reusable(conn))
                raise
        # reads are single statements: autocommit saves the BEGIN/COMMIT round trips
        return _Begun(self._pool, conn, write)

    def _commit_in(self, tx: SqlTx, commit: StepCommit) -> CommitResult:
        """A simple step is one statement (the fast path's) in the open transaction too."""
        if is_simple(commit):
            return fastpath.step(tx.conn, commit)
        return super()._commit_in(tx, commit)

    def _execute(self, conn: Any, sql: str, params: Sequence[Any]) -> Any:
        if not params:
            return conn.execute(sql)
        translated = self._sql.get(sql)
        if translated is None:
            translated = self._sql[sql] = sql.replace("?", "%s")
        return conn.execute(translated, tuple(params))

    def _is_retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, _RETRYABLE)

    def _lock_key(self, tx: SqlTx, key: str) -> None:
        tx.rows("SELECT pg_advisory_xact_lock(hashtext(?))", key)

    def _lock_migrations(self, tx: SqlTx) -> None:
        tx.rows(
            "SELECT pg_advisory_xact_lock(hashtext('replaykit.migrate:' || "
            "COALESCE(current_schema(), '')))"
        )

    def _emit_notifies(self, tx: SqlTx, kinds: Sequence[str]) -> None:
        for kind in kinds:
            tx.rows(
                "SELECT pg_notify(?, COALESCE(current_schema(), '') || ':' || ?)",
                NOTIFY_CHANNEL,
                kind,
            )

    # -- liveness ---------------------------------------------------------------------------
    def _take_hold(self, worker_id: str) -> Hold:
        try:
            return _AdvisoryHold(self.url, worker_id)
        except psycopg.Error as exc:
            raise StorageError(
                f"cannot take the liveness lock of worker {worker_id!r} ({self.url}): {exc}"
            ) from exc

    def _find_dead(self, rows: list[dict[str, Any]]) -> tuple[list[str], Callable[[], None]]:
        """One autocommit statement: a key this session can lock has no live holder (the lock
        is let go at once, at the end of the statement)."""
        ids = [row["worker_id"] for row in rows]
        return self._read(lambda tx: self._lockable(tx, ids)), lambda: None

    def _confirm_dead(self, tx: SqlTx, worker_ids: Sequence[str]) -> list[str]:
        """Lock the dead workers' keys until the transaction ends: a second reaper finds them
        held and leaves them alone."""
        return self._lockable(tx, worker_ids)

    def _lockable(self, tx: SqlTx, worker_ids: Sequence[str]) -> list[str]:
        rows = tx.rows(
            f"SELECT worker_id FROM rk_workers WHERE worker_id IN ({placeholders(worker_ids)}) "
            "AND pg_try_advisory_xact_lock(lock_key)",
            *worker_ids,
        )
        return [row["worker_id"] for row in rows]

    # -- notifications ----------------------------------------------------------------------
    def wait_for_wakeup(self, timeout: float) -> bool:
        """Block up to ``timeout`` s for a NOTIFY on ``replaykit``; True if one arrived.

        The payload is ``schema:kind``; notifications of other schemas of the same database
        (other apps or test schemas) are ignored. Notifications sent while nobody waits are kept
        by the listening connection and returned by the next call. On a connection failure the
        listener is reopened on the next call."""
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._listen_lock:
            try:
                listener = self._listening()
                while True:
                    left = max(deadline - time.monotonic(), 0.0)
                    got = [n.payload for n in listener.notifies(timeout=left, stop_after=1)]
                    if any(p.startswith(self._schema_prefix) for p in got):
                        return True
                    if not got or time.monotonic() >= deadline:
                        return False
            except psycopg.Error:
                self._drop_listener()
        time.sleep(min(max(deadline - time.monotonic(), 0.0), self.poll_interval))
        return False

    def _listening(self) -> psycopg.Connection[Any]:
        if self._listener is None or self._listener.closed:
            listener = psycopg.connect(self.url, autocommit=True)
            try:
                listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
                row = listener.execute("SELECT COALESCE(current_schema(), '')").fetchone()
                self._schema_prefix = f"{row[0] if row else ''}:"
            except BaseException:
                listener.close()
                raise
            self._listener = listener
        return self._listener

    def _drop_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

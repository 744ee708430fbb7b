"""The MySQL / MariaDB adapter: many worker processes and machines on one MySQL 8+ or
MariaDB 10.6+ database (InnoDB).

Driver: PyMySQL. It is pure Python (no client library to build or match to the server), well
kept, speaks both MySQL and MariaDB, and is synchronous, which is what the storage protocol is:
every method is a blocking call made from the runtime's worker threads. An asyncio driver
(aiomysql, asyncmy) would need an event loop per thread for nothing; the C drivers (mysqlclient,
mysql-connector's C extension) are faster per call but need a compiler or wheels that match
the client library, for little gain when a round trip costs far more than the parsing.

* Connections: a small thread-safe pool of our own (``sql_pool.ConnectionPool``, newest first,
  shared with the PostgreSQL adapter). PyMySQL has no pool; DBUtils' ``PooledDB`` would work but
  adds a dependency for less than we need here (throw away a connection after a lost-connection
  error so the retry opens a fresh one).
  Every connection: ``autocommit`` off, ``READ COMMITTED``, ``utf8mb4``; every unit of work is
  one explicit transaction, ended with COMMIT or ROLLBACK (reads too, so no idle pooled
  connection keeps a transaction and its metadata locks open).
* Claims (instances, outbox rows, competing messages) use ``SELECT ... FOR UPDATE SKIP LOCKED``;
  READ COMMITTED keeps InnoDB from taking gap locks, so claims behave as on PostgreSQL.
* No ``UPDATE ... RETURNING`` (MySQL has none): rows are selected ``FOR UPDATE`` and updated by
  key in the same transaction (``update_returning = False``). No ``ON CONFLICT``: duplicates are
  skipped with ``ON DUPLICATE KEY UPDATE col = col`` (changes 0 rows; unlike ``INSERT IGNORE``
  it does not turn other errors such as a too-long key into warnings).
* Per-key serialization of deliveries and wait registrations: a row of ``rk_locks`` locked
  ``FOR UPDATE`` until the transaction ends (``GET_LOCK`` is held by the session, not the
  transaction, so it only guards :meth:`MysqlStorage.migrate`, whose DDL commits on its own).
* No LISTEN/NOTIFY: ``notifies = False``; workers poll every ``poll_interval`` of the App.
* Liveness (``storage_adapters.sql_liveness``): each worker holds ``GET_LOCK('rk:<random>')`` on
  a dedicated connection for its whole life; the server frees it when that connection ends, so
  a worker whose lock ``IS_FREE_LOCK`` is dead. (Lock names are server-wide: the random part
  keeps workers of different databases apart.)
* Needs ``binlog_format`` ROW or MIXED if binary logging is on (READ COMMITTED with
  statement-based logging is refused by the server).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import pymysql
from pymysql.constants import ER

from replaykit.core.errors import StorageError

from ..sql_common import SqlStorage, safe_url
from ..sql_liveness import ConnectionHold, Hold, Registration
from ..sql_pool import ConnectionPool
from ..sql_steps import Begun, SqlTx, placeholders

#: lost or refused connections (client-side codes): the pool drops the connection, we retry
_CONNECTION_LOST = {2003, 2006, 2013, 2055}
_RETRYABLE = {ER.LOCK_DEADLOCK, ER.LOCK_WAIT_TIMEOUT, *_CONNECTION_LOST}
_MIGRATE_LOCK = "CONCAT('replaykit.migrate:', SHA1(COALESCE(DATABASE(), '')))"


def connect_args(url: str) -> dict[str, Any]:
    """PyMySQL ``connect`` arguments for ``mysql://user:pass@host:port/db?unix_socket=...``."""
    parts = urlsplit(url)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ValueError(f"MySQL URL {url!r} names no database: use mysql://user@host:3306/db")
    args: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": database,
        "connect_timeout": float(query.get("connect_timeout", 10)),
    }
    if "unix_socket" in query:
        args["unix_socket"] = query["unix_socket"]
    return args


def open_connection(args: dict[str, Any]) -> pymysql.connections.Connection[Any]:
    """A connection as the adapter uses it (autocommit off, READ COMMITTED, utf8mb4)."""
    return pymysql.connect(
        **args,
        charset="utf8mb4",
        autocommit=False,
        binary_prefix=True,  # bytes are sent as _binary'...', never read as utf8mb4 text
        init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    )


def execute_once(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Run one statement on a connection of its own and commit; the rows it returned."""
    conn = open_connection(connect_args(url))
    try:
        cursor = conn.cursor()
        cursor.execute(sql)
        conn.commit()
        return list(cursor.fetchall())
    finally:
        conn.close()


@contextmanager
def scratch_database(url: str, prefix: str = "rk_scratch") -> Iterator[str]:
    """A new empty database ``<prefix>_<hex>`` on the server of ``url``, dropped afterwards;
    yields its URL (for tests and benchmarks)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    execute_once(url, f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    try:
        yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    finally:
        execute_once(url, f"DROP DATABASE IF EXISTS {name}")


def is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, pymysql.err.InterfaceError):
        return True  # PyMySQL's "the connection is already closed"
    return bool(exc.args) and exc.args[0] in _CONNECTION_LOST


class MysqlSession:
    """``ctx.session`` of a transactional activity: the adapter's open transaction.

    ``session.execute(sql, params)`` runs one statement (PyMySQL's ``%s`` placeholders) and
    returns the cursor, so ``session.execute("SELECT ...").fetchall()`` works as on psycopg;
    ``session.connection`` is the PyMySQL connection. Do not commit or roll back yourself, and
    keep DDL out of activities: MySQL commits the whole transaction before any DDL statement.
    """

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        cursor = self.connection.cursor()
        cursor.execute(sql, params)
        return cursor


class _Begun:
    """A pooled connection's transaction (see ``sql_steps.Begun``): explicit COMMIT or ROLLBACK,
    then back to the pool, or out of it when the connection is broken."""

    __slots__ = ("conn", "pool")

    def __init__(self, pool: ConnectionPool[Any], conn: Any) -> None:
        self.pool = pool
        self.conn = conn

    def commit(self) -> None:
        try:
            self.conn.commit()
        except BaseException as exc:
            broken = is_connection_error(exc) or not _rolled_back(self.conn)
            self.pool.put(self.conn, broken=broken)
            raise
        self.pool.put(self.conn)

    def rollback(self) -> None:
        self.pool.put(self.conn, broken=not _rolled_back(self.conn))


def _close(conn: Any) -> None:
    with suppress(pymysql.err.Error):  # already closed after a lost connection
        conn.close()


def _rolled_back(conn: Any) -> bool:
    try:
        conn.rollback()
    except pymysql.err.Error:
        return False
    return True


class _NamedLockHold(ConnectionHold):
    """A worker's liveness lock: ``GET_LOCK(lock_key)`` held by a dedicated connection for as
    long as it lives."""

    def __init__(self, args: dict[str, Any]) -> None:
        self.lock_key = f"rk:{uuid.uuid4().hex}"
        conn = open_connection(args)
        try:
            cursor = conn.cursor()
            cursor.execute("SELECT GET_LOCK(%s, 0)", (self.lock_key,))
            if cursor.fetchone() != (1,):
                raise StorageError(f"the new lock {self.lock_key} is taken")
        except BaseException:
            conn.close()
            raise
        super().__init__(conn, (pymysql.err.Error,))

    def _ping(self) -> None:
        self._conn.ping(reconnect=False)


class MysqlStorage(SqlStorage):
    """Storage on MySQL 8+ / MariaDB 10.6+ (InnoDB) through PyMySQL."""

    notifies = False
    migrations_package = "storage_adapters.mysql"
    db_errors = (pymysql.err.Error,)
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    update_returning = False

    def __init__(
        self,
        url: str,
        *,
        max_pool: int = 10,
        pool_timeout: float = 30.0,
        retry_seconds: float = 30.0,
        migrate_lock_seconds: float = 60.0,
    ) -> None:
        self.url = url
        self.retry_seconds = retry_seconds
        self.migrate_lock_seconds = migrate_lock_seconds
        self._args = connect_args(url.replace("mariadb://", "mysql://", 1))
        self._sql: dict[tuple[str, bool], str] = {}
        self._pool: ConnectionPool[Any] = ConnectionPool(
            lambda: open_connection(self._args),
            _close,
            what="MySQL",
            max_size=max_pool,
            timeout=pool_timeout,
        )
        self._workers: dict[str, Registration] = {}
        try:  # connect once now: an unreachable server fails at once, with the driver's reason
            self._pool.put(self._pool.get())
        except pymysql.err.Error as exc:
            raise StorageError(f"cannot connect to MySQL at {safe_url(url)}: {exc}") from exc

    def close(self) -> None:
        self._release_workers()
        self._pool.close()

    # -- dialect hooks ----------------------------------------------------------------------
    def _open(self, *, write: bool, exclusive: bool = False) -> Begun:
        # autocommit is off: the transaction begins with the first statement
        return _Begun(self._pool, self._pool.get())

    def _execute(self, conn: Any, sql: str, params: Sequence[Any]) -> Any:
        """``?`` -> ``%s`` (``%`` doubled) and standard ``"quoted"`` identifiers -> backticks."""
        has_params = bool(params)
        translated = self._sql.get((sql, has_params))
        if translated is None:
            translated = sql.replace('"', "`")
            if has_params:
                translated = translated.replace("%", "%%").replace("?", "%s")
            self._sql[(sql, has_params)] = translated
        cursor = conn.cursor()
        cursor.execute(translated, tuple(params) if has_params else None)
        return cursor

    def _execute_script(self, conn: Any, sql: str) -> Any:
        cursor = conn.cursor()
        cursor.execute(sql)
        return cursor

    def _ignore_duplicate(self, key: str, column: str) -> str:
        return f" ON DUPLICATE KEY UPDATE {column} = {column}"

    def _update_duplicate(self, key: str, assignments: str) -> str:
        return f" ON DUPLICATE KEY UPDATE {assignments}"

    def _insert_id(self, tx: SqlTx, sql: str, params: Sequence[Any]) -> int | None:
        cursor = tx.cursor(sql, *params)
        return int(cursor.lastrowid) if cursor.rowcount == 1 else None

    def _is_retryable(self, exc: BaseException) -> bool:
        return is_connection_error(exc) or (bool(exc.args) and exc.args[0] in _RETRYABLE)

    def _lock_key(self, tx: SqlTx, key: str) -> None:
        """Lock ``rk_locks``'s row for ``key`` to the end of the transaction (created once)."""
        if tx.one("SELECT lock_key FROM rk_locks WHERE lock_key = ? FOR UPDATE", key) is None:
            tx.exec(
                "INSERT INTO rk_locks (lock_key) VALUES (?)" + tx.ignore_duplicate("", "lock_key"),
                key,
            )

    def _session(self, conn: Any) -> MysqlSession:
        return MysqlSession(conn)

    # -- liveness ---------------------------------------------------------------------------
    def _take_hold(self, worker_id: str) -> Hold:
        try:
            return _NamedLockHold(self._args)
        except pymysql.err.Error as exc:
            raise StorageError(
                f"cannot take the liveness lock of worker {worker_id!r} ({self.url}): {exc}"
            ) from exc

    def _find_dead(self, rows: list[dict[str, Any]]) -> tuple[list[str], Callable[[], None]]:
        ids = [row["worker_id"] for row in rows]
        return self._read(lambda tx: self._free(tx, ids, "")), lambda: None

    def _confirm_dead(self, tx: SqlTx, worker_ids: Sequence[str]) -> list[str]:
        """Still free, and the rows locked: a second reaper waits, then finds them gone."""
        return self._free(tx, worker_ids, " FOR UPDATE")

    def _free(self, tx: SqlTx, worker_ids: Sequence[str], lock: str) -> list[str]:
        rows = tx.rows(
            f"SELECT worker_id FROM rk_workers WHERE worker_id IN ({placeholders(worker_ids)}) "
            f"AND IS_FREE_LOCK(lock_key) = 1{lock}",
            *worker_ids,
        )
        return [row["worker_id"] for row in rows]

    # -- migrations -------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply pending migrations while holding ``GET_LOCK`` (per database) on a connection
        of its own, so workers starting together apply each migration once. MySQL commits each
        DDL statement by itself; the migration's statements may be run again after a failure."""
        conn = open_connection(self._args)
        try:
            cursor = conn.cursor()
            cursor.execute(f"SELECT GET_LOCK({_MIGRATE_LOCK}, %s)", (self.migrate_lock_seconds,))
            row = cursor.fetchone()
            if not row or row[0] != 1:
                raise StorageError(
                    f"another process kept the migration lock of {self.url} for "
                    f"{self.migrate_lock_seconds:.0f} s; is a migration stuck?"
                )
            try:
                return super().migrate()
            finally:
                cursor.execute(f"SELECT RELEASE_LOCK({_MIGRATE_LOCK})")
        finally:
            conn.close()

"""The SQL the adapters share: every storage algorithm written once, with small dialect hooks.

:class:`SqlStorage` implements the :class:`replaykit.storage.Storage` protocol on top of a
DB-API connection. SQL is written with ``?`` placeholders and three markers a dialect fills in:
``{FOR_UPDATE}`` (a blocking row lock), ``{SKIP_LOCKED}`` (a row lock that skips rows other
transactions hold) and ``{AGE}`` (seconds since the statement began: a lease end written as
``? + {AGE}`` counts from when the row was written, after any row-lock wait). SQLite serializes
writers (``BEGIN IMMEDIATE``), so the lock markers are empty there;
PostgreSQL and MySQL turn them into ``FOR UPDATE`` / ``FOR UPDATE SKIP LOCKED`` and add per-key
locks (:meth:`SqlStorage._lock_key`); PostgreSQL also sends ``pg_notify``
(:meth:`SqlStorage._emit_notifies`).

What differs between the three dialects is asked of hooks, never spelled in the shared SQL:

* duplicates on insert: :meth:`SqlStorage._ignore_duplicate` / :meth:`_update_duplicate`
  (``ON CONFLICT ... DO NOTHING/UPDATE`` here, ``ON DUPLICATE KEY UPDATE`` on MySQL);
* the id of an inserted row: :meth:`SqlStorage._insert_id` (``RETURNING id``, or ``lastrowid``);
* ``UPDATE/DELETE ... RETURNING``: with :attr:`SqlStorage.update_returning` false (MySQL), the
  helpers ``sql_steps.update_where`` / ``update_rows`` select the rows ``FOR UPDATE`` first and
  update them by key in the same transaction;
* identifiers that are reserved words in MySQL (``key``, ``match``, ``cursor``) are written in
  standard double quotes, which the MySQL dialect turns into backticks.

Lock order (what keeps PostgreSQL free of deadlocks between the common paths): advisory keys
(sorted), then the instance row, then that instance's timers/waits/inbox rows. Deadlocks that
remain possible in rare paths are retried as a whole transaction, like SQLite's busy errors.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import msgspec

from replaykit.core.errors import InvalidInput, StorageError, WorkflowNotFound
from replaykit.core.history import CancelRequested, encode_event
from replaykit.core.queues import QueueSpec, QueueStats
from replaykit.storage import (
    TERMINAL_STATUSES,
    AdmitResult,
    CommitResult,
    InboxItem,
    InstanceRecord,
    OutboxRecord,
    PublishSpec,
    StepCommit,
    StoredEvent,
    TimerSpec,
    WorkerHold,
)

from . import sql_commit, sql_delivery, sql_liveness, sql_queues, sql_steps
from .group_commit import GroupCommit
from .migrations import load_migrations, split_statements
from .sql_schedules import ScheduleSql
from .sql_steps import (
    Begun,
    SqlTx,
    at_write,
    dump_json,
    lease_end,
    load_json,
    new_token,
    placeholders,
)
from .sql_transaction import SqlTransaction

T = TypeVar("T")

INSTANCE_COLUMNS = (
    "instance_id, workflow, status, input, output, error, run, continued_from, parent_id, "
    "parent_step, lease_owner, lease_expires_at, created_at, updated_at, history_len, queue, "
    "priority, dedup_key, admitted_at, lease_token, version, forked_from, forked_step, deadline, "
    "cancel_requested_at, timeout"
)
#: the stored statuses an instance that is cancelling has (it reads ``cancelling``)
ALIVE = ("queued", "pending", "running", "waiting")
CLAIMABLE = "(status = 'pending' OR (status = 'running' AND lease_expires_at < ?))"
CLAIM_ASSIGN = (
    "status = 'running', lease_owner = ?, lease_token = ?, lease_expires_at = ? + {AGE}, "
    "updated_at = ?"
)
MIGRATIONS_DDL = "CREATE TABLE IF NOT EXISTS schema_migrations (version varchar(128) PRIMARY KEY)"


def safe_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def instance_from_row(row: dict[str, Any]) -> InstanceRecord:
    """Build an :class:`InstanceRecord` from a row of :data:`INSTANCE_COLUMNS`."""
    fields = dict(row)
    for name in ("input", "output", "error"):
        fields[name] = load_json(fields[name])
    for name in (
        "created_at",
        "updated_at",
        "lease_expires_at",
        "admitted_at",
        "deadline",
        "cancel_requested_at",
        "timeout",
    ):
        if fields[name] is not None:
            fields[name] = float(fields[name])
    if fields["cancel_requested_at"] is not None and fields["status"] in ALIVE:
        fields["status"] = "cancelling"
    return InstanceRecord(**fields)


def status_filter(status: str) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause (and parameters) of instances that *read* as ``status``."""
    alive = ", ".join(f"'{s}'" for s in ALIVE)
    if status == "cancelling":
        return f"(status IN ({alive}) AND cancel_requested_at IS NOT NULL)", ()
    if status in ALIVE:
        return "(status = ? AND cancel_requested_at IS NULL)", (status,)
    return "status = ?", (status,)


#: the status an instance reads as, in SQL (for counting by status)
READ_STATUS = (
    "CASE WHEN cancel_requested_at IS NOT NULL AND status IN "
    + "("
    + ", ".join(f"'{s}'" for s in ALIVE)
    + ") THEN 'cancelling' ELSE status END"
)


def outbox_from_row(row: dict[str, Any]) -> OutboxRecord:
    return OutboxRecord(
        id=row["id"],
        instance_id=row["instance_id"],
        event=load_json(row["event"]),
        destination=row["destination"],
        attempts=row["attempts"],
        status=row["status"],
        last_error=row["last_error"],
        next_attempt_at=row["next_attempt_at"],
    )


class SqlStorage(ScheduleSql):
    """The storage algorithms, shared by the SQLite, PostgreSQL and MySQL adapters."""

    url: str
    notifies: bool = False
    #: package holding the adapter's ``migrations`` folder
    migrations_package: str = ""
    #: how long a transaction that keeps hitting busy/deadlock errors is retried
    retry_seconds: float = 30.0
    for_update: str = ""
    skip_locked: str = ""
    #: SQL for the seconds since the statement began (lease ends count from the write)
    statement_age: str = "0"
    #: ``UPDATE ... RETURNING`` and ``DELETE ... RETURNING`` exist (not on MySQL)
    update_returning: bool = True
    #: the driver's base exception class(es), turned into StorageError
    db_errors: tuple[type[BaseException], ...] = ()
    #: write transactions committed through this object (benchmarks read it; approximate
    #: under heavy thread contention, since ``+=`` is not atomic)
    commits: int = 0
    #: set by adapters that commit concurrent steps and creations together (group_commit.py)
    committer: GroupCommit | None = None
    #: the workers registered through this object (set by each adapter's ``__init__``)
    _workers: dict[str, sql_liveness.Registration]

    # -- dialect hooks ----------------------------------------------------------------------
    def _open(self, *, write: bool, exclusive: bool = False) -> Begun:
        """Begin a transaction (``exclusive``: keep out every other writer) on a connection of
        the adapter's; the caller ends it explicitly (:class:`~.sql_steps.Begun`)."""
        raise NotImplementedError

    def _execute(self, conn: Any, sql: str, params: Sequence[Any]) -> Any:
        """Run one statement (``?`` placeholders); return a DB-API cursor."""
        raise NotImplementedError

    def _execute_script(self, conn: Any, sql: str) -> Any:
        """Run DDL verbatim (no placeholders, no translation), e.g. a migration statement."""
        return self._execute(conn, sql, ())

    def _ignore_duplicate(self, key: str, column: str) -> str:
        """See :meth:`SqlTx.ignore_duplicate` (``column`` is for dialects without a target)."""
        return f" ON CONFLICT {key} DO NOTHING" if key else " ON CONFLICT DO NOTHING"

    def _update_duplicate(self, key: str, assignments: str) -> str:
        """See :meth:`SqlTx.update_duplicate`."""
        return f" ON CONFLICT {key} DO UPDATE SET {assignments}"

    def _insert_id(self, tx: SqlTx, sql: str, params: Sequence[Any]) -> int | None:
        """Run an ``INSERT`` of one row; its ``id``, or None when a duplicate was skipped."""
        row = tx.one(f"{sql} RETURNING id", *params)
        return None if row is None else int(row["id"])

    def _is_retryable(self, exc: BaseException) -> bool:
        """Busy/locked (SQLite) or deadlock/serialization failure (PostgreSQL)."""
        return False

    def _lock_key(self, tx: SqlTx, key: str) -> None:
        """Serialize deliveries and wait registrations on ``key`` until the transaction ends."""

    def _lock_migrations(self, tx: SqlTx) -> None:
        """Keep concurrent ``migrate`` calls apart (beyond what ``_begin(exclusive)`` does)."""

    def _emit_notifies(self, tx: SqlTx, kinds: Sequence[str]) -> None:
        """Tell listeners (inside the transaction) that work of ``kinds`` may be available."""

    def _session(self, conn: Any) -> Any:
        """The object handed to a transactional activity as ``ctx.session``."""
        return conn

    def _take_hold(self, worker_id: str) -> sql_liveness.Hold:
        """Take a new liveness lock for ``worker_id`` (see ``sql_liveness``)."""
        raise NotImplementedError

    def _find_dead(self, rows: list[dict[str, Any]]) -> tuple[list[str], Callable[[], None]]:
        """See ``sql_liveness.Dialect._find_dead``."""
        raise NotImplementedError

    def _confirm_dead(self, tx: SqlTx, worker_ids: Sequence[str]) -> list[str]:
        """See ``sql_liveness.Dialect._confirm_dead``: here, those still registered (their rows
        locked)."""
        rows = tx.rows(
            f"SELECT worker_id FROM rk_workers WHERE worker_id IN ({placeholders(worker_ids)})"
            "{FOR_UPDATE}",
            *worker_ids,
        )
        return [row["worker_id"] for row in rows]

    def close(self) -> None:
        raise NotImplementedError

    def wait_for_wakeup(self, timeout: float) -> bool:
        time.sleep(max(timeout, 0.0))
        return False

    # -- transactions -----------------------------------------------------------------------
    def _run(self, work: Callable[[SqlTx], T], *, write: bool = True, exclusive: bool = False) -> T:
        """Run ``work`` in one transaction (committed when it returns, rolled back when it
        raises), retrying the whole of it on busy/deadlock errors."""
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.005
        while True:
            try:
                begun = self._open(write=write, exclusive=exclusive)
                try:
                    tx = SqlTx(self, begun.conn)
                    result = work(tx)
                    if tx.notify_kinds:
                        self._flush_notifies(tx)
                except BaseException:
                    begun.rollback()
                    raise
                begun.commit()
                if write:
                    self.commits += 1
                return result
            except self.db_errors as exc:
                if not self._is_retryable(exc) or time.monotonic() + delay > deadline:
                    raise StorageError(f"database error ({self.url}): {exc}") from exc
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.25)

    def _flush_notifies(self, tx: SqlTx) -> None:
        if tx.notify_kinds:
            self._emit_notifies(tx, sorted(tx.notify_kinds))

    def _read(self, work: Callable[[SqlTx], T]) -> T:
        return self._run(work, write=False)

    def _grouped(self, work: Callable[[SqlTx], T]) -> T:
        """A write unit that may share its transaction with other threads' (group commit)."""
        if self.committer is None:
            return self._run(work)
        return self.committer.submit(work)

    def transaction(self) -> SqlTransaction:
        """The lazy transaction of a transactional activity (see ``sql_transaction``)."""
        return SqlTransaction(self)

    def _commit_in(self, tx: SqlTx, commit: StepCommit) -> CommitResult:
        """Apply a step in the open transaction ``tx`` (dialects may have a faster way)."""
        return sql_commit.apply_commit(tx, commit)

    def applied_migrations(self) -> list[str]:
        def work(tx: SqlTx) -> list[str]:
            rows = tx.rows("SELECT version FROM schema_migrations ORDER BY version")
            return [str(row["version"]) for row in rows]

        try:
            return self._read(work)
        except StorageError:
            return []  # no schema_migrations table yet

    def migrate(self) -> list[str]:
        """Apply pending migrations in one exclusive transaction; return the versions applied."""

        def work(tx: SqlTx) -> list[str]:
            self._lock_migrations(tx)
            tx.script(MIGRATIONS_DDL)
            done = {row["version"] for row in tx.rows("SELECT version FROM schema_migrations")}
            applied = []
            for migration in load_migrations(self.migrations_package):
                if migration.version in done:
                    continue
                for statement in split_statements(migration.up):
                    tx.script(statement)
                tx.run("INSERT INTO schema_migrations (version) VALUES (?)", migration.version)
                applied.append(migration.version)
            return applied

        return self._run(work, exclusive=True)

    # -- instances --------------------------------------------------------------------------
    def create_instance(
        self, record: InstanceRecord, started_event: bytes, deadline: TimerSpec | None = None
    ) -> tuple[InstanceRecord, bool]:
        def work(tx: SqlTx) -> tuple[InstanceRecord, bool]:
            if sql_steps.insert_instance(tx, record, started_event):
                if deadline is not None:
                    sql_commit.insert_timer(tx, record.instance_id, deadline)
                return msgspec.structs.replace(record, history_len=1), True
            stored = self._get(tx, record.instance_id)
            assert stored is not None
            return stored, False

        return self._grouped(work)

    def _get(self, tx: SqlTx, instance_id: str) -> InstanceRecord | None:
        row = tx.one(
            f"SELECT {INSTANCE_COLUMNS} FROM rk_instances WHERE instance_id = ?", instance_id
        )
        return None if row is None else instance_from_row(row)

    def get_instance(self, instance_id: str) -> InstanceRecord | None:
        return self._read(lambda tx: self._get(tx, instance_id))

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
        filters = {
            "workflow = ?": (workflow,),
            "created_at < ?": (created_before,),
            "created_at > ?": (created_after,),
        }
        used = {clause: value for clause, value in filters.items() if value[0] is not None}
        if status is not None:
            clause, params = status_filter(status)
            used[clause] = params
        where = " AND ".join(used) or "1 = 1"
        sql = (
            f"SELECT {INSTANCE_COLUMNS} FROM rk_instances WHERE {where} "
            "ORDER BY created_at DESC, instance_id DESC LIMIT ? OFFSET ?"
        )
        values = [v for params in used.values() for v in params]
        rows = self._read(lambda tx: tx.rows(sql, *values, limit, offset))
        return [instance_from_row(row) for row in rows]

    def load_history(self, instance_id: str) -> list[bytes]:
        sql = "SELECT event FROM rk_history WHERE instance_id = ? ORDER BY seq"
        return [bytes(r["event"]) for r in self._read(lambda tx: tx.rows(sql, instance_id))]

    def fork_instance(
        self,
        record: InstanceRecord,
        started_event: bytes,
        *,
        source_run: int,
        events: int,
    ) -> InstanceRecord:
        source_id = record.forked_from
        if source_id is None:
            raise InvalidInput(f"fork {record.instance_id!r} does not name its source instance")

        def work(tx: SqlTx) -> InstanceRecord:
            source = self._get_locked(tx, source_id)
            if source is None:
                raise WorkflowNotFound(f"cannot fork: no workflow instance with id {source_id!r}")
            if source.run != source_run:
                raise InvalidInput(
                    f"cannot fork instance {source_id!r}: it moved on to run {source.run} "
                    f"while the fork was made from run {source_run}; fork it again"
                )
            if source.history_len < events:
                raise InvalidInput(
                    f"cannot fork instance {source_id!r}: its history has "
                    f"{source.history_len} events, not the {events} the fork copies"
                )
            if not sql_steps.insert_instance(tx, record, started_event):
                raise InvalidInput(
                    f"cannot fork instance {source_id!r} into {record.instance_id!r}: an "
                    "instance with that id exists; choose another new id"
                )
            tx.exec(
                "INSERT INTO rk_history (instance_id, seq, event) SELECT ?, seq, event "
                "FROM rk_history WHERE instance_id = ? AND seq >= 1 AND seq < ?",
                record.instance_id,
                source_id,
                events,
            )
            tx.exec(
                "UPDATE rk_instances SET history_len = ? WHERE instance_id = ?",
                events,
                record.instance_id,
            )
            found = self._get(tx, record.instance_id)
            assert found is not None
            return found

        return self._run(work)

    def load_archived_history(self, instance_id: str, run: int) -> list[bytes]:
        sql = "SELECT event FROM rk_history_archive WHERE instance_id = ? AND run = ? ORDER BY seq"
        return [bytes(r["event"]) for r in self._read(lambda tx: tx.rows(sql, instance_id, run))]

    def load_run(self, instance_id: str) -> tuple[list[bytes], list[InboxItem]]:
        def work(tx: SqlTx) -> tuple[list[bytes], list[InboxItem]]:
            rows = tx.rows(
                "SELECT event FROM rk_history WHERE instance_id = ? ORDER BY seq", instance_id
            )
            return [bytes(r["event"]) for r in rows], sql_steps.inbox_items(tx, instance_id)

        return self._read(work)

    def load_inbox(self, instance_id: str) -> list[InboxItem]:
        return self._read(lambda tx: sql_steps.inbox_items(tx, instance_id))

    def registered_steps(self, instance_id: str) -> list[int]:
        terminal = ", ".join(f"'{s}'" for s in sorted(TERMINAL_STATUSES))
        sql = (
            "SELECT step FROM rk_timers WHERE instance_id = ? "
            "UNION SELECT step FROM rk_waits WHERE instance_id = ? "
            "UNION SELECT parent_step AS step FROM rk_instances WHERE parent_id = ? "
            f"AND parent_step IS NOT NULL AND status NOT IN ({terminal})"
        )
        rows = self._read(lambda tx: tx.rows(sql, instance_id, instance_id, instance_id))
        return sorted({int(row["step"]) for row in rows})

    # -- leases -----------------------------------------------------------------------------
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
        called = time.monotonic()
        names = list(workflows or ())
        only = f" AND workflow IN ({placeholders(names)})" if workflows is not None else ""
        if workflows is not None and not names:
            return []
        if exclude:
            only += f" AND instance_id NOT IN ({placeholders(exclude)})"
        select = (
            f"SELECT instance_id FROM rk_instances WHERE {CLAIMABLE}{only} "
            "ORDER BY updated_at, instance_id LIMIT ?{SKIP_LOCKED}"
        )

        def work(tx: SqlTx) -> list[InstanceRecord]:
            ids = [row["instance_id"] for row in tx.rows(select, now, *names, *exclude, limit)]
            if not ids:
                return []
            rows = sql_steps.update_rows(
                tx,
                "rk_instances",
                "instance_id",
                ids,
                CLAIM_ASSIGN,
                owner,
                new_token(),
                lease_end(now, lease_seconds, called),
                now,
                returning=INSTANCE_COLUMNS,
            )
            by_id = {row["instance_id"]: instance_from_row(row) for row in rows}
            return [by_id[i] for i in ids if i in by_id]

        return self._run(work)

    def claim_instance(
        self, instance_id: str, owner: str, *, lease_seconds: float, now: float
    ) -> InstanceRecord | None:
        called = time.monotonic()
        where = (
            f"instance_id = ? AND ({CLAIMABLE} OR (status = 'running' AND lease_owner = ?))",
            (instance_id, now, owner),
        )
        rows = self._update_instances(
            where,
            CLAIM_ASSIGN,
            owner,
            new_token(),
            lambda: lease_end(now, lease_seconds, called),
            now,
            returning=INSTANCE_COLUMNS,
        )
        return instance_from_row(rows[0]) if rows else None

    def heartbeat(
        self, instance_ids: Sequence[str], owner: str, *, lease_seconds: float, now: float
    ) -> list[str]:
        if not instance_ids:
            return []
        called = time.monotonic()
        listed = placeholders(instance_ids)
        held = f"status = 'running' AND lease_owner = ? AND instance_id IN ({listed})"
        where = (held, (owner, *instance_ids))
        rows = self._update_instances(
            where,
            "lease_expires_at = ? + {AGE}",
            lambda: lease_end(now, lease_seconds, called),
            returning="instance_id",
        )
        kept = {row["instance_id"] for row in rows}
        return [i for i in instance_ids if i not in kept]

    def _update_instances(
        self, where: tuple[str, Sequence[Any]], assign: str, *params: Any, returning: str
    ) -> list[dict[str, Any]]:
        """Update the instances matching ``where`` in a transaction of its own; their
        ``returning`` columns after the update (see ``sql_steps.update_where`` for a callable
        in ``params``)."""
        return self._run(
            lambda tx: sql_steps.update_where(
                tx, "rk_instances", "instance_id", where, assign, *params, returning=returning
            )
        )

    def release(self, instance_id: str, owner: str) -> None:
        def work(tx: SqlTx) -> None:
            released = tx.run(
                "UPDATE rk_instances SET status = 'pending', lease_owner = NULL, "
                "lease_expires_at = NULL WHERE instance_id = ? AND lease_owner = ? "
                "AND status = 'running'",
                instance_id,
                owner,
            )
            if released:
                tx.notify("runnable")

        self._run(work)

    # -- liveness ---------------------------------------------------------------------------
    def register_worker(self, worker_id: str, *, now: float) -> WorkerHold:
        return sql_liveness.register(self, worker_id, now=now)

    def reap_dead_workers(self) -> list[str]:
        return sql_liveness.reap(self)

    def _release_workers(self) -> None:
        """On close: release the holds of the workers still registered through this object."""
        for registration in list(self._workers.values()):
            with contextlib.suppress(StorageError):  # the hold is freed all the same
                registration.release()

    # -- steps ------------------------------------------------------------------------------
    def commit(self, commit: StepCommit) -> CommitResult:
        called = time.monotonic()
        return self._grouped(lambda tx: self._commit_in(tx, at_write(commit, called)))

    # -- waking -----------------------------------------------------------------------------
    def fire_due_timers(self, *, now: float, limit: int = 100) -> list[str]:
        return self._run(lambda tx: sql_commit.fire_due_timers(tx, now=now, limit=limit))

    def next_timer_at(self) -> float | None:
        row = self._read(lambda tx: tx.one("SELECT MIN(fire_at) AS at FROM rk_timers"))
        return None if row is None or row["at"] is None else float(row["at"])

    def send_event(self, event: StoredEvent, *, now: float) -> tuple[bool, list[str]]:
        return self._run(lambda tx: sql_delivery.send_event(tx, event, now=now))

    def send_batch(
        self,
        batch: Sequence[tuple[StoredEvent, Sequence[tuple[InstanceRecord, bytes]]]],
        *,
        now: float,
    ) -> tuple[list[bool], list[str]]:
        def work(tx: SqlTx) -> tuple[list[bool], list[str]]:
            stored, woken = [], []
            for event, starts in batch:
                new, event_woken = sql_delivery.send_event(tx, event, now=now)
                stored.append(new)
                woken.extend(event_woken)
                for record, started in starts:
                    sql_steps.insert_instance(tx, record, started)
            return stored, woken

        return self._run(work)

    def publish(self, message: PublishSpec, *, now: float) -> list[str]:
        return self._run(lambda tx: sql_delivery.publish(tx, message, now=now)[1])

    def request_cancel(self, instance_id: str, reason: str, *, now: float) -> InstanceRecord:
        def work(tx: SqlTx) -> InstanceRecord:
            record = self._get_locked(tx, instance_id)
            if record is None:
                raise WorkflowNotFound(f"no workflow instance with id {instance_id!r}")
            if record.status in TERMINAL_STATUSES:
                return record
            event = encode_event(CancelRequested(reason=reason, at=now))
            sql_steps.deliver_to_inbox(tx, instance_id, event, now)
            if record.status == "queued":  # not admitted yet: it leaves its queue to end now
                tx.exec(
                    "UPDATE rk_instances SET status = 'pending' WHERE instance_id = ?", instance_id
                )
            sql_commit.mark_cancel_requested(tx, instance_id, now)
            found = self._get(tx, instance_id)
            assert found is not None
            return found

        return self._run(work)

    def block(
        self, instance_id: str, owner: str, error: Any, *, now: float, token: str | None = None
    ) -> bool:
        sql = (
            "UPDATE rk_instances SET status = 'blocked', error = ?, lease_owner = NULL, "
            "lease_token = NULL, lease_expires_at = NULL, updated_at = ? "
            f"WHERE instance_id = ? AND {sql_commit.HELD}"
        )
        params = (dump_json(error), now, instance_id, owner, token)
        return self._run(lambda tx: tx.run(sql, *params) > 0)

    def retry_blocked(self, *, now: float, workflows: Sequence[str] | None = None) -> int:
        if workflows is not None and not workflows:
            return 0
        sql = "UPDATE rk_instances SET status = 'pending', error = NULL, updated_at = ? "
        sql += "WHERE status = 'blocked'"
        if workflows is not None:
            sql += f" AND workflow IN ({placeholders(workflows)})"

        def work(tx: SqlTx) -> int:
            count = tx.run(sql, now, *(workflows or ()))
            if count:
                tx.notify("runnable")
            return count

        return self._run(work)

    def _get_locked(self, tx: SqlTx, instance_id: str) -> InstanceRecord | None:
        row = tx.one(
            f"SELECT {INSTANCE_COLUMNS} FROM rk_instances WHERE instance_id = ?{{FOR_UPDATE}}",
            instance_id,
        )
        return None if row is None else instance_from_row(row)

    # -- outbox -----------------------------------------------------------------------------
    def claim_outbox(
        self, owner: str, *, limit: int, now: float, lease_seconds: float
    ) -> list[OutboxRecord]:
        select = (
            "SELECT id FROM rk_outbox WHERE status = 'pending' AND next_attempt_at <= ? "
            "AND (claimed_until IS NULL OR claimed_until < ?) "
            "ORDER BY next_attempt_at, id LIMIT ?{SKIP_LOCKED}"
        )

        def work(tx: SqlTx) -> list[OutboxRecord]:
            ids = [row["id"] for row in tx.rows(select, now, now, limit)]
            if not ids:
                return []
            rows = sql_steps.update_rows(
                tx,
                "rk_outbox",
                "id",
                ids,
                "claimed_by = ?, claimed_until = ?, attempts = attempts + 1",
                owner,
                now + lease_seconds,
                returning="id, instance_id, event, destination, attempts, status, last_error, "
                "next_attempt_at",
            )
            return sorted((outbox_from_row(row) for row in rows), key=lambda r: ids.index(r.id))

        return self._run(work)

    def finish_outbox(
        self, record_id: int, *, delivered: bool, error: str | None, next_attempt_at: float | None
    ) -> None:
        if delivered:
            sql = (
                "UPDATE rk_outbox SET status = 'delivered', delivered_at = ?, last_error = ?, "
                "claimed_by = NULL, claimed_until = NULL WHERE id = ?"
            )
            params: tuple[Any, ...] = (time.time(), error, record_id)
        else:
            status = "failed" if next_attempt_at is None else "pending"
            sql = (
                "UPDATE rk_outbox SET status = ?, last_error = ?, "
                "next_attempt_at = COALESCE(?, next_attempt_at), "
                "claimed_by = NULL, claimed_until = NULL WHERE id = ?"
            )
            params = (status, error, next_attempt_at, record_id)

        def work(tx: SqlTx) -> None:
            tx.run(sql, *params)
            if not delivered and next_attempt_at is not None:
                tx.notify("outbox")

        self._run(work)

    # -- queues -----------------------------------------------------------------------------
    def declare_queue(self, spec: QueueSpec, *, now: float) -> None:
        self._run(lambda tx: sql_queues.declare(tx, spec, now))

    def enqueue(self, record: InstanceRecord, started_event: bytes) -> tuple[InstanceRecord, bool]:
        def work(tx: SqlTx) -> tuple[InstanceRecord, bool]:
            if sql_queues.enqueue(tx, record, started_event):
                return msgspec.structs.replace(record, history_len=1), True
            stored = self._get(tx, record.instance_id)
            assert stored is not None
            return stored, False

        return self._grouped(work)

    def admit(
        self,
        owner: str,
        *,
        queues: Sequence[str],
        limit: int,
        now: float,
        workflows: Sequence[str] | None = None,
    ) -> AdmitResult:
        if not queues or limit <= 0 or (workflows is not None and not workflows):
            return AdmitResult()
        names = self._read(lambda tx: sql_queues.queues_with_work(tx, queues, workflows))
        admitted: list[str] = []
        retry: list[float] = []
        for name in names:  # one transaction per queue: each holds its queue's lock briefly
            left = limit - len(admitted)
            ids, retry_at = self._run(
                lambda tx, name=name, left=left: sql_queues.admit(
                    tx, name, owner, limit=left, now=now, workflows=workflows
                )
            )
            admitted += ids
            retry += [retry_at] if retry_at is not None else []
        return AdmitResult(admitted=admitted, retry_at=min(retry, default=None))

    def queue_stats(self) -> list[QueueStats]:
        return self._read(sql_queues.queue_stats)

    # -- operations -------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        def work(tx: SqlTx) -> dict[str, Any]:
            by_status = tx.rows(
                f"SELECT {READ_STATUS} AS status, COUNT(*) AS n FROM rk_instances "
                f"GROUP BY {READ_STATUS}"
            )
            owners = tx.rows(
                "SELECT lease_owner, COUNT(*) AS n FROM rk_instances "
                "WHERE status = 'running' AND lease_owner IS NOT NULL GROUP BY lease_owner"
            )
            oldest = tx.one(
                "SELECT MIN(created_at) AS at FROM rk_instances WHERE status = 'waiting'"
            )
            timers = tx.one("SELECT COUNT(*) AS n FROM rk_timers")
            outbox = tx.one("SELECT COUNT(*) AS n FROM rk_outbox WHERE status = 'pending'")
            return {
                "by_status": {row["status"]: int(row["n"]) for row in by_status},
                "oldest_waiting": None if oldest is None else oldest["at"],
                "lease_owners": {row["lease_owner"]: int(row["n"]) for row in owners},
                "timers": int(timers["n"]) if timers else 0,
                "outbox_pending": int(outbox["n"]) if outbox else 0,
                "queues": {
                    q.spec.name: {"queued": q.queued, "running": q.running, **q.spec.limits()}
                    for q in sql_queues.queue_stats(tx)
                },
            }

        return self._read(work)


__all__ = [
    "INSTANCE_COLUMNS",
    "SqlStorage",
    "SqlTransaction",
    "SqlTx",
    "at_write",
    "dump_json",
    "instance_from_row",
    "lease_end",
    "load_json",
    "new_token",
    "safe_url",
]

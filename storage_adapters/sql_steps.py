"""The pieces the SQL adapters' write algorithms share: :class:`SqlTx` (one open transaction with
dialect hooks) and small helpers over it (wake an instance, fill its inbox, append history).

The algorithms themselves: ``sql_delivery`` (events and channel messages) and ``sql_commit``
(StepCommit, waits, timers). ``sql_common.SqlStorage`` wraps them in transactions with retries.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import msgspec

from replaykit.storage import (
    InboxItem,
    InstanceRecord,
    StepCommit,
)

_json_encoder = msgspec.json.Encoder()


def dump_json(value: Any) -> str | None:
    """JSON text for a value column (``None`` stays SQL NULL)."""
    return None if value is None else _json_encoder.encode(value).decode()


def load_json(text: str | bytes | None) -> Any:
    return None if text is None else msgspec.json.decode(text)


class Dialect(Protocol):
    """What :class:`SqlTx` needs from an adapter (``SqlStorage`` provides it)."""

    for_update: str
    skip_locked: str
    update_returning: bool
    statement_age: str

    @property
    def db_errors(self) -> tuple[type[BaseException], ...]:
        """The driver's base exception class(es)."""

    def _execute(self, conn: Any, sql: str, params: Sequence[Any]) -> Any: ...

    def _execute_script(self, conn: Any, sql: str) -> Any: ...

    def _lock_key(self, tx: SqlTx, key: str) -> None: ...

    def _ignore_duplicate(self, key: str, column: str) -> str: ...

    def _update_duplicate(self, key: str, assignments: str) -> str: ...

    def _insert_id(self, tx: SqlTx, sql: str, params: Sequence[Any]) -> int | None: ...


class Begun(Protocol):
    """A database transaction an adapter has begun (``SqlStorage._open``) on ``conn``; it is ended
    exactly once, explicitly: :meth:`commit`, or :meth:`rollback`. Either gives the connection
    back to the adapter (pool, thread)."""

    conn: Any

    def commit(self) -> None:
        """COMMIT. If that fails, the transaction is rolled back, the connection given back (or
        discarded), and the driver's error raised."""

    def rollback(self) -> None:
        """ROLLBACK. Never raises a driver error: a connection that cannot roll back is
        discarded, which ends its transaction as surely."""


class SqlTx:
    """One open transaction: run statements (``?`` placeholders), collect notifications."""

    def __init__(self, storage: Dialect, conn: Any) -> None:
        self.storage = storage
        self.conn = conn
        self.notify_kinds: set[str] = set()

    def cursor(self, sql: str, *params: Any) -> Any:
        """Run one statement; the driver's cursor."""
        if "{" in sql:  # most statements have no dialect placeholder: no string copies then
            storage = self.storage
            sql = sql.replace("{FOR_UPDATE}", storage.for_update)
            sql = sql.replace("{SKIP_LOCKED}", storage.skip_locked)
            sql = sql.replace("{AGE}", storage.statement_age)
        return self.storage._execute(self.conn, sql, params)

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        cursor = self.cursor(sql, *params)
        found = cursor.fetchall()  # first: in pipeline mode this is what waits for the result
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in found]

    def one(self, sql: str, *params: Any) -> dict[str, Any] | None:
        found = self.rows(sql, *params)
        return found[0] if found else None

    def run(self, sql: str, *params: Any) -> int:
        """Execute a statement without a result; return the number of rows it changed."""
        return int(self.cursor(sql, *params).rowcount)

    def exec(self, sql: str, *params: Any) -> None:
        """Execute a statement whose outcome nobody reads (PostgreSQL may pipeline it: errors
        still abort the transaction, at its next sync or at COMMIT)."""
        self.cursor(sql, *params)

    def script(self, sql: str) -> None:
        """Execute DDL verbatim (no placeholders), e.g. a migration statement."""
        self.storage._execute_script(self.conn, sql)

    def insert_id(self, sql: str, *params: Any) -> int | None:
        """Run an ``INSERT`` (which may skip a duplicate): the new row's ``id``, None if skipped."""
        return self.storage._insert_id(self, sql, params)

    def ignore_duplicate(self, key: str, column: str) -> str:
        """SQL after ``INSERT ... VALUES (...)`` that skips a row duplicating the unique ``key``
        (``"(a, b)"``, or ``""`` for any unique index), changing no rows; ``column`` is one of
        the table's columns (MySQL assigns it to itself)."""
        return self.storage._ignore_duplicate(key, column)

    def update_duplicate(self, key: str, assignments: str) -> str:
        """SQL after ``INSERT ... VALUES (...)`` that applies ``assignments`` (``?`` parameters
        follow the VALUES ones) to the existing row when the unique ``key`` is duplicated."""
        return self.storage._update_duplicate(key, assignments)

    def notify(self, kind: str) -> None:
        self.notify_kinds.add(kind)

    def lock_keys(self, keys: Iterable[str]) -> None:
        for key in sorted(set(keys)):
            self.storage._lock_key(self, key)


# -- small shared pieces ------------------------------------------------------------------------
def new_token() -> str:
    """A lease token: new for every claim (``InstanceRecord.lease_token``)."""
    return uuid.uuid4().hex


def lease_end(now: float, lease_seconds: float, called: float) -> float:
    """When a lease written now ends: ``now`` (the caller's clock when it called, at
    ``time.monotonic()`` = ``called``) plus the time the call has waited since (for a
    connection, the write lock, the group commit), plus ``lease_seconds``."""
    return now + max(time.monotonic() - called, 0.0) + lease_seconds


def at_write(commit: StepCommit, called: float) -> StepCommit:
    """``commit`` with its lease end counted from now (see ``StepCommit.lease_seconds``)."""
    if commit.lease_seconds is None:
        return commit
    end = lease_end(commit.now, commit.lease_seconds, called)
    return msgspec.structs.replace(commit, lease_expires_at=end)


def placeholders(values: Sequence[Any]) -> str:
    """``?, ?, ?`` for an ``IN (...)`` list of ``values``."""
    return ", ".join("?" for _ in values)


def update_rows(
    tx: SqlTx,
    table: str,
    key: str,
    keys: Sequence[Any],
    assign: str,
    *params: Any,
    returning: str | None = None,
) -> list[dict[str, Any]]:
    """``UPDATE table SET assign`` (``params``) on the rows whose ``key`` is in ``keys``, rows this
    transaction has locked; the ``returning`` columns as they are after the update."""
    where = f"{key} IN ({placeholders(keys)})"
    update = f"UPDATE {table} SET {assign} WHERE {where}"
    if returning is None:
        tx.exec(update, *params, *keys)
        return []
    if tx.storage.update_returning:
        return tx.rows(f"{update} RETURNING {returning}", *params, *keys)
    tx.exec(update, *params, *keys)
    return tx.rows(f"SELECT {returning} FROM {table} WHERE {where}", *keys)


def update_where(
    tx: SqlTx,
    table: str,
    key: str,
    where: tuple[str, Sequence[Any]],
    assign: str,
    *params: Any,
    returning: str,
    fresh: bool = True,
) -> list[dict[str, Any]]:
    """``UPDATE table SET assign WHERE where RETURNING returning`` in one statement where the
    database can; else (MySQL) select the rows' ``key`` ``FOR UPDATE`` first, then update them
    by key. ``fresh=False`` says the update leaves the ``returning`` columns alone, so they are
    read while locking and not read again. A callable in ``params`` is called for its value
    once the rows are locked (a lease end counted from the write)."""
    condition, condition_params = where
    if tx.storage.update_returning:
        if "{AGE}" in assign:  # lock first: the new values are computed after any lock wait
            locked = f"SELECT {key} FROM {table} WHERE {condition}{{FOR_UPDATE}}"
            condition = f"{key} IN ({locked})"
        return tx.rows(
            f"UPDATE {table} SET {assign} WHERE {condition} RETURNING {returning}",
            *_values(params),
            *condition_params,
        )
    columns = key if fresh else f"{key}, {returning}"
    sql = f"SELECT {columns} FROM {table} WHERE {condition}{{FOR_UPDATE}}"
    locked = tx.rows(sql, *condition_params)
    if not locked:
        return []
    keys = [row[key] for row in locked]
    found = update_rows(
        tx, table, key, keys, assign, *_values(params), returning=returning if fresh else None
    )
    return found if fresh else locked


def _values(params: Sequence[Any]) -> list[Any]:
    return [p() if callable(p) else p for p in params]


def lock_instance(tx: SqlTx, instance_id: str) -> dict[str, Any] | None:
    return tx.one(
        "SELECT status, event_floor FROM rk_instances WHERE instance_id = ?{FOR_UPDATE}",
        instance_id,
    )


def wake(tx: SqlTx, instance_id: str, now: float) -> None:
    """Make a waiting instance pending (always locks the row; see StepCommit rule 5)."""
    tx.exec(
        "UPDATE rk_instances SET status = CASE WHEN status = 'waiting' THEN 'pending' "
        "ELSE status END, updated_at = ? WHERE instance_id = ?",
        now,
        instance_id,
    )
    tx.notify("runnable")


def add_to_inbox(tx: SqlTx, instance_id: str, event: bytes, now: float) -> None:
    tx.exec(
        "INSERT INTO rk_inbox (instance_id, event, created_at) VALUES (?, ?, ?)",
        instance_id,
        event,
        now,
    )


def deliver_to_inbox(tx: SqlTx, instance_id: str, event: bytes, now: float) -> None:
    """Put a history event into the instance's inbox, then wake it (in this order)."""
    add_to_inbox(tx, instance_id, event, now)
    wake(tx, instance_id, now)


def take_wait(tx: SqlTx, instance_id: str, step: int) -> bool:
    """Remove the wait at ``step`` and its timeout timer; False if the wait is already gone."""
    drop_timer(tx, instance_id, step)
    return tx.run("DELETE FROM rk_waits WHERE instance_id = ? AND step = ?", instance_id, step) > 0


def drop_timer(tx: SqlTx, instance_id: str, step: int) -> None:
    tx.exec("DELETE FROM rk_timers WHERE instance_id = ? AND step = ?", instance_id, step)


def inbox_items(tx: SqlTx, instance_id: str) -> list[InboxItem]:
    rows = tx.rows("SELECT id, event FROM rk_inbox WHERE instance_id = ? ORDER BY id", instance_id)
    return [
        InboxItem(id=row["id"], instance_id=instance_id, event=bytes(row["event"])) for row in rows
    ]


#: one history event at its position (``append_history``, ``sql_commit.apply_simple``)
APPEND_HISTORY = "INSERT INTO rk_history (instance_id, seq, event) VALUES (?, ?, ?)"


def append_history(tx: SqlTx, instance_id: str, start: int, events: Sequence[bytes]) -> None:
    for seq, event in enumerate(events, start):
        tx.exec(APPEND_HISTORY, instance_id, seq, event)


def insert_instance(tx: SqlTx, record: InstanceRecord, started_event: bytes) -> bool:
    """Insert an instance with ``started_event`` as history position 0 unless the id exists."""
    inserted = tx.run(
        "INSERT INTO rk_instances (instance_id, workflow, status, input, output, error, run, "
        "continued_from, parent_id, parent_step, lease_owner, lease_expires_at, created_at, "
        "updated_at, queue, priority, dedup_key, version, forked_from, forked_step, deadline, "
        "timeout, history_len, event_floor, lease_token) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, "
        "(SELECT COALESCE(MAX(id), 0) FROM rk_events), ?)"  # the event floor: same statement
        + tx.ignore_duplicate("(instance_id)", "instance_id"),
        record.instance_id,
        record.workflow,
        record.status,
        dump_json(record.input),
        dump_json(record.output),
        dump_json(record.error),
        record.run,
        record.continued_from,
        record.parent_id,
        record.parent_step,
        record.lease_owner,
        record.lease_expires_at,
        record.created_at,
        record.updated_at,
        record.queue,
        record.priority,
        record.dedup_key,
        record.version,
        record.forked_from,
        record.forked_step,
        record.deadline,
        record.timeout,
        record.lease_token,
    )
    if not inserted:
        return False
    append_history(tx, record.instance_id, 0, [started_event])
    if record.status in ("pending", "queued"):  # queued: workers admit it
        tx.notify("runnable")
    return True

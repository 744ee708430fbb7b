"""The write algorithms the SQL adapters share, as functions over an open transaction.

Each function takes a :class:`SqlTx` (one open transaction) and follows the protocol in
``replaykit.storage``: applying a :class:`StepCommit`, registering waits (with immediate
delivery), delivering events and channel messages, firing timers. ``sql_common.SqlStorage`` wraps
them in transactions with retries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import msgspec

from replaykit.core.errors import LeaseLost
from replaykit.core.history import (
    CancelRequested,
    EventData,
    EventReceived,
    Message,
    MessageReceived,
    decode_event,
    encode_event,
)
from replaykit.storage import (
    TERMINAL_STATUSES,
    ChildSpec,
    CommitResult,
    InboxItem,
    InstanceRecord,
    PublishSpec,
    StepCommit,
    StoredEvent,
    SubscriptionSpec,
    TimerSpec,
    WaitSpec,
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
    db_errors: tuple[type[BaseException], ...]

    def _execute(self, conn: Any, sql: str, params: Sequence[Any]) -> Any: ...

    def _execute_script(self, conn: Any, sql: str) -> Any: ...

    def _lock_key(self, tx: SqlTx, key: str) -> None: ...

    def _ignore_duplicate(self, key: str, column: str) -> str: ...

    def _update_duplicate(self, key: str, assignments: str) -> str: ...

    def _insert_id(self, tx: SqlTx, sql: str, params: Sequence[Any]) -> int | None: ...


class SqlTx:
    """One open transaction: run statements (``?`` placeholders), collect notifications."""

    def __init__(self, storage: Dialect, conn: Any) -> None:
        self.storage = storage
        self.conn = conn
        self.notify_kinds: set[str] = set()

    def cursor(self, sql: str, *params: Any) -> Any:
        """Run one statement; the driver's cursor."""
        sql = sql.replace("{FOR_UPDATE}", self.storage.for_update)
        sql = sql.replace("{SKIP_LOCKED}", self.storage.skip_locked)
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
    read while locking and not read again."""
    condition, condition_params = where
    if tx.storage.update_returning:
        return tx.rows(
            f"UPDATE {table} SET {assign} WHERE {condition} RETURNING {returning}",
            *params,
            *condition_params,
        )
    columns = key if fresh else f"{key}, {returning}"
    sql = f"SELECT {columns} FROM {table} WHERE {condition}{{FOR_UPDATE}}"
    locked = tx.rows(sql, *condition_params)
    if not locked:
        return []
    keys = [row[key] for row in locked]
    found = update_rows(
        tx, table, key, keys, assign, *params, returning=returning if fresh else None
    )
    return found if fresh else locked


def event_floor(tx: SqlTx) -> int:
    row = tx.one("SELECT COALESCE(MAX(id), 0) AS n FROM rk_events")
    return int(row["n"]) if row else 0


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


def append_history(tx: SqlTx, instance_id: str, start: int, events: Sequence[bytes]) -> None:
    for seq, event in enumerate(events, start):
        tx.exec(
            "INSERT INTO rk_history (instance_id, seq, event) VALUES (?, ?, ?)",
            instance_id,
            seq,
            event,
        )


def insert_instance(tx: SqlTx, record: InstanceRecord, started_event: bytes) -> bool:
    """Insert an instance with ``started_event`` as history position 0 unless the id exists."""
    inserted = tx.run(
        "INSERT INTO rk_instances (instance_id, workflow, status, input, output, error, run, "
        "continued_from, parent_id, parent_step, lease_owner, lease_expires_at, created_at, "
        "updated_at, history_len, event_floor) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)"
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
        event_floor(tx),
    )
    if not inserted:
        return False
    append_history(tx, record.instance_id, 0, [started_event])
    if record.status == "pending":
        tx.notify("runnable")
    return True


def matches(data: Any, match: dict[str, Any] | None) -> bool:
    """An event's data fits a wait's ``match`` when it holds every key with an equal value."""
    if not match:
        return True
    return isinstance(data, dict) and all(k in data and data[k] == v for k, v in match.items())


# -- events -------------------------------------------------------------------------------------
EVENT_COLUMNS = "id, type, source, event_id, subject, time, data, extensions"


def event_received(row: dict[str, Any], step: int, now: float) -> bytes:
    data = EventData(
        type=row["type"],
        data=load_json(row["data"]),
        id=row["event_id"],
        source=row["source"],
        subject=row["subject"],
        time=row["time"],
        extensions=load_json(row["extensions"]) or {},
    )
    return encode_event(EventReceived(step=step, name=row["type"], event=data, at=now))


def record_delivery(tx: SqlTx, instance_id: str, event_pk: int) -> None:
    tx.exec(
        "INSERT INTO rk_event_deliveries (instance_id, event_pk) VALUES (?, ?)"
        + tx.ignore_duplicate("(instance_id, event_pk)", "instance_id"),
        instance_id,
        event_pk,
    )


def send_event(tx: SqlTx, event: StoredEvent, *, now: float) -> tuple[bool, list[str]]:
    tx.lock_keys([f"event:{event.type}"])
    stored = tx.insert_id(
        f"INSERT INTO rk_events ({EVENT_COLUMNS[4:]}, target, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)" + tx.ignore_duplicate("", "id"),
        event.type,
        event.source,
        event.id,
        event.subject,
        event.time,
        dump_json(event.data),
        dump_json(event.extensions),
        event.target,
        now,
    )
    if stored is None:
        return False, []
    row: dict[str, Any] = {
        "id": stored,
        "type": event.type,
        "source": event.source,
        "event_id": event.id,
        "subject": event.subject,
        "time": event.time,
        "data": dump_json(event.data),
        "extensions": dump_json(event.extensions),
    }
    woken = []
    for instance_id, waits in _event_waiters(tx, event, row["id"]).items():
        if lock_instance(tx, instance_id) is None:
            continue
        for step, match in waits:
            if matches(event.data, load_json(match)) and take_wait(tx, instance_id, step):
                record_delivery(tx, instance_id, row["id"])
                deliver_to_inbox(tx, instance_id, event_received(row, step, now), now)
                woken.append(instance_id)
                break
    return True, woken


def _event_waiters(
    tx: SqlTx, event: StoredEvent, event_pk: int
) -> dict[str, list[tuple[int, str | None]]]:
    """Event waits that may take ``event``, per instance (sorted), lowest step first."""
    if event.target is not None:
        rows = tx.rows(
            'SELECT instance_id, step, "match" FROM rk_waits '
            "WHERE kind = 'event' AND \"key\" = ? AND instance_id = ? ORDER BY step",
            event.type,
            event.target,
        )
    else:
        rows = tx.rows(
            'SELECT w.instance_id, w.step, w."match" FROM rk_waits w '
            "JOIN rk_instances i ON i.instance_id = w.instance_id "
            "WHERE w.kind = 'event' AND w.\"key\" = ? AND i.event_floor < ? "
            "ORDER BY w.instance_id, w.step",
            event.type,
            event_pk,
        )
    waiters: dict[str, list[tuple[int, str | None]]] = {}
    for row in rows:
        waiters.setdefault(row["instance_id"], []).append((row["step"], row["match"]))
    return waiters


def take_available_event(
    tx: SqlTx, instance_id: str, floor: int, wait: WaitSpec, now: float
) -> bytes | None:
    """The oldest event available to ``instance_id`` that fits ``wait``, consumed at once."""
    rows = tx.rows(
        f"SELECT {EVENT_COLUMNS} FROM rk_events e WHERE e.type = ? "
        "AND (e.target = ? OR (e.target IS NULL AND e.id > ?)) AND NOT EXISTS "
        "(SELECT 1 FROM rk_event_deliveries d WHERE d.instance_id = ? AND d.event_pk = e.id) "
        "ORDER BY e.id",
        wait.key,
        instance_id,
        floor,
        instance_id,
    )
    for row in rows:
        if matches(load_json(row["data"]), wait.match):
            record_delivery(tx, instance_id, row["id"])
            return event_received(row, wait.step, now)
    return None


# -- channel messages ---------------------------------------------------------------------------
MESSAGE_COLUMNS = "id, channel, data, metadata, sender"


def message_received(row: dict[str, Any], step: int, now: float) -> bytes:
    message = Message(
        channel=row["channel"],
        data=load_json(row["data"]),
        metadata=load_json(row["metadata"]) or {},
        id=row["id"],
        sender=row["sender"],
    )
    return encode_event(MessageReceived(step=step, name=row["channel"], message=message, at=now))


def claim_message(tx: SqlTx, message_id: int, instance_id: str) -> None:
    tx.exec("UPDATE rk_messages SET claimed_by = ? WHERE id = ?", instance_id, message_id)


def advance_cursor(tx: SqlTx, instance_id: str, channel: str, message_id: int) -> None:
    tx.exec(
        'UPDATE rk_subscriptions SET "cursor" = ? WHERE instance_id = ? AND channel = ? '
        'AND "cursor" < ?',
        message_id,
        instance_id,
        channel,
        message_id,
    )


def publish(tx: SqlTx, message: PublishSpec, *, now: float) -> tuple[int, list[str]]:
    """Store a message and deliver it to the waiting receivers; return (id, woken ids)."""
    tx.lock_keys([f"message:{message.channel}"])
    message_id = tx.insert_id(
        "INSERT INTO rk_messages (channel, data, metadata, sender, target, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        message.channel,
        dump_json(message.data),
        dump_json(message.metadata),
        message.sender,
        message.target,
        now,
    )
    assert message_id is not None
    stored = {
        "id": message_id,
        "channel": message.channel,
        "data": dump_json(message.data),
        "metadata": dump_json(message.metadata),
        "sender": message.sender,
    }
    if message.target is not None:
        woken = _deliver_message(tx, stored, [message.target], now, claim=True)
    else:
        woken = _deliver_message(tx, stored, _waiting_subscribers(tx, message.channel), now)
        competing = _waiting_subscribers(tx, message.channel, "competing")
        woken += _deliver_message(tx, stored, competing, now, claim=True)
    return message_id, woken


def _waiting_subscribers(tx: SqlTx, channel: str, mode: str = "broadcast") -> list[str]:
    """Subscribers of ``mode`` with a message wait on ``channel``, oldest wait first."""
    rows = tx.rows(
        "SELECT s.instance_id, MIN(w.created_at) AS since FROM rk_subscriptions s "
        "JOIN rk_waits w ON w.instance_id = s.instance_id AND w.kind = 'message' "
        'AND w."key" = s.channel WHERE s.channel = ? AND s.mode = ? '
        "GROUP BY s.instance_id ORDER BY since, s.instance_id",
        channel,
        mode,
    )
    return [row["instance_id"] for row in rows]


def _deliver_message(
    tx: SqlTx, message: dict[str, Any], receivers: list[str], now: float, *, claim: bool = False
) -> list[str]:
    """Give ``message`` to each receiver's lowest message wait on its channel (to the first
    one that takes it when ``claim``, marking the message claimed)."""
    woken = []
    for instance_id in receivers:
        if lock_instance(tx, instance_id) is None:
            continue
        steps = tx.rows(
            "SELECT step FROM rk_waits WHERE instance_id = ? AND kind = 'message' AND \"key\" = ? "
            "ORDER BY step",
            instance_id,
            message["channel"],
        )
        step = next((r["step"] for r in steps if take_wait(tx, instance_id, r["step"])), None)
        if step is None:
            continue
        if claim:
            claim_message(tx, message["id"], instance_id)
        else:
            advance_cursor(tx, instance_id, message["channel"], message["id"])
        deliver_to_inbox(tx, instance_id, message_received(message, step, now), now)
        woken.append(instance_id)
        if claim:
            break
    return woken


def take_available_message(tx: SqlTx, instance_id: str, wait: WaitSpec, now: float) -> bytes | None:
    """A direct message first, else the next message of the instance's subscription."""
    channel = wait.key
    select = f"SELECT {MESSAGE_COLUMNS} FROM rk_messages WHERE channel = ? AND "
    order = " ORDER BY id LIMIT 1{SKIP_LOCKED}"
    found = tx.one(select + "target = ? AND claimed_by IS NULL" + order, channel, instance_id)
    if found is not None:
        claim_message(tx, found["id"], instance_id)
        return message_received(found, wait.step, now)
    sub = tx.one(
        'SELECT mode, "cursor" FROM rk_subscriptions WHERE instance_id = ? AND channel = ?',
        instance_id,
        channel,
    )
    if sub is None:
        return None
    if sub["mode"] == "broadcast":
        found = tx.one(select + "target IS NULL AND id > ?" + order, channel, sub["cursor"])
        if found is not None:
            advance_cursor(tx, instance_id, channel, found["id"])
    else:
        found = tx.one(select + "target IS NULL AND claimed_by IS NULL" + order, channel)
        if found is not None:
            claim_message(tx, found["id"], instance_id)
    return None if found is None else message_received(found, wait.step, now)


def apply_subscription(tx: SqlTx, instance_id: str, sub: SubscriptionSpec, now: float) -> None:
    if not sub.subscribe:
        tx.exec(
            "DELETE FROM rk_subscriptions WHERE instance_id = ? AND channel = ?",
            instance_id,
            sub.channel,
        )
        return
    tx.exec(
        'INSERT INTO rk_subscriptions (instance_id, channel, mode, "cursor", created_at) '
        "VALUES (?, ?, ?, (SELECT COALESCE(MAX(id), 0) FROM rk_messages WHERE channel = ?), ?)"
        + tx.update_duplicate("(instance_id, channel)", "mode = ?"),
        instance_id,
        sub.channel,
        sub.mode,
        sub.channel,
        now,
        sub.mode,
    )


# -- waits and timers ---------------------------------------------------------------------------
def register_wait(tx: SqlTx, instance_id: str, floor: int, wait: WaitSpec, now: float) -> None:
    """Put what is already available for ``wait`` into the inbox, else store the wait."""
    exists = tx.one(
        "SELECT 1 AS x FROM rk_waits WHERE instance_id = ? AND step = ?", instance_id, wait.step
    )
    if exists is not None:
        return
    if wait.kind == "event":
        found = take_available_event(tx, instance_id, floor, wait, now)
    else:
        found = take_available_message(tx, instance_id, wait, now)
    if found is not None:
        drop_timer(tx, instance_id, wait.step)
        add_to_inbox(tx, instance_id, found, now)
        return
    tx.exec(
        'INSERT INTO rk_waits (instance_id, step, kind, "key", "match", created_at) '
        "VALUES (?, ?, ?, ?, ?, ?)" + tx.ignore_duplicate("(instance_id, step)", "step"),
        instance_id,
        wait.step,
        wait.kind,
        wait.key,
        dump_json(wait.match),
        now,
    )


def insert_timer(tx: SqlTx, instance_id: str, timer: TimerSpec) -> None:
    tx.exec(
        "INSERT INTO rk_timers (instance_id, step, fire_at, event, is_timeout) "
        "VALUES (?, ?, ?, ?, ?)" + tx.ignore_duplicate("(instance_id, step)", "step"),
        instance_id,
        timer.step,
        timer.fire_at,
        timer.event,
        timer.is_timeout,
    )
    tx.notify("timer")


def fire_due_timers(tx: SqlTx, *, now: float, limit: int) -> list[str]:
    """Move due timers into inboxes; each exactly once (the timer row is deleted here)."""
    due = tx.rows(
        "SELECT instance_id, step FROM rk_timers WHERE fire_at <= ? ORDER BY fire_at LIMIT ?",
        now,
        limit,
    )
    woken: list[str] = []
    for timer in due:
        instance_id = timer["instance_id"]
        instance = tx.one(
            "SELECT status FROM rk_instances WHERE instance_id = ?{SKIP_LOCKED}", instance_id
        )
        if instance is None:
            continue  # another transaction holds the instance; next round
        fired = _take_timer(tx, instance_id, timer["step"])
        if fired is None or instance["status"] in TERMINAL_STATUSES:
            continue
        if fired["is_timeout"] and not tx.run(
            "DELETE FROM rk_waits WHERE instance_id = ? AND step = ?", instance_id, timer["step"]
        ):
            continue  # the wait was satisfied first: the timeout is void
        deliver_to_inbox(tx, instance_id, bytes(fired["event"]), now)
        if instance_id not in woken:
            woken.append(instance_id)
    return woken


def _take_timer(tx: SqlTx, instance_id: str, step: int) -> dict[str, Any] | None:
    """Delete one timer; its ``event`` and ``is_timeout``, or None if it is already gone."""
    where = "FROM rk_timers WHERE instance_id = ? AND step = ?"
    if tx.storage.update_returning:
        return tx.one(f"DELETE {where} RETURNING event, is_timeout", instance_id, step)
    fired = tx.one(f"SELECT event, is_timeout {where}{{FOR_UPDATE}}", instance_id, step)
    if fired is not None:
        tx.exec(f"DELETE {where}", instance_id, step)
    return fired


def delete_steps(tx: SqlTx, instance_id: str, steps: Sequence[int]) -> None:
    for step in steps:
        drop_timer(tx, instance_id, step)
        tx.exec("DELETE FROM rk_waits WHERE instance_id = ? AND step = ?", instance_id, step)


def delete_all(tx: SqlTx, instance_id: str, tables: Sequence[str]) -> None:
    for table in tables:
        tx.exec(f"DELETE FROM {table} WHERE instance_id = ?", instance_id)


# -- StepCommit ---------------------------------------------------------------------------------
def commit_keys(commit: StepCommit) -> list[str]:
    keys = [f"{wait.kind}:{wait.key}" for wait in commit.waits]
    keys += [f"message:{p.channel}" for p in commit.publishes]
    keys += [f"message:{s.channel}" for s in commit.subscriptions]
    return keys


def apply_commit(tx: SqlTx, c: StepCommit) -> CommitResult:
    """Apply a StepCommit in the order its docstring gives (see ``replaykit.storage``)."""
    tx.lock_keys(commit_keys(c))
    instance = _check_lease(tx, c)
    if c.consumed_inbox:
        consumed = placeholders(c.consumed_inbox)
        tx.exec(
            f"DELETE FROM rk_inbox WHERE instance_id = ? AND id IN ({consumed})",
            c.instance_id,
            *c.consumed_inbox,
        )
    append_history(tx, c.instance_id, c.history_len, c.events)
    _apply_effects(tx, c)
    for wait in c.waits:
        register_wait(tx, c.instance_id, instance["event_floor"], wait, c.now)
    if c.recur:
        _recur(tx, c, instance)
        return CommitResult(released=True)
    return _set_status(tx, c, instance)


def _check_lease(tx: SqlTx, c: StepCommit) -> dict[str, Any]:
    found = update_where(
        tx,
        "rk_instances",
        "instance_id",
        ("instance_id = ? AND lease_owner = ? AND status = 'running'", (c.instance_id, c.owner)),
        "lease_expires_at = ?, updated_at = ?, history_len = ?",
        c.lease_expires_at,
        c.now,
        c.history_len + len(c.events),
        returning="run, parent_id, parent_step, event_floor",
        fresh=False,
    )
    if not found:
        raise LeaseLost(
            f"instance {c.instance_id!r}: worker {c.owner!r} no longer holds its lease "
            "(another worker took it over); the step was not recorded",
            instance_id=c.instance_id,
            owner=c.owner,
        )
    return found[0]


def _apply_effects(tx: SqlTx, c: StepCommit) -> None:
    """Rule 3: cancelled steps, timers, subscriptions, children, publishes, outbox."""
    delete_steps(tx, c.instance_id, c.cancel_steps)
    for timer in c.timers:
        insert_timer(tx, c.instance_id, timer)
    for sub in c.subscriptions:
        apply_subscription(tx, c.instance_id, sub, c.now)
    for child in c.children:
        _insert_child(tx, c, child)
    for message in c.publishes:
        publish(tx, message, now=c.now)
    for spec in c.outbox:
        tx.exec(
            "INSERT INTO rk_outbox (instance_id, event, destination, status, attempts, "
            "next_attempt_at, created_at) VALUES (?, ?, ?, 'pending', 0, ?, ?)",
            c.instance_id,
            dump_json(spec.event),
            spec.destination,
            c.now,
            c.now,
        )
        tx.notify("outbox")


def _insert_child(tx: SqlTx, c: StepCommit, child: ChildSpec) -> None:
    record = InstanceRecord(
        instance_id=child.instance_id,
        workflow=child.workflow,
        status="pending",
        input=child.input,
        parent_id=c.instance_id,
        parent_step=child.parent_step,
        created_at=c.now,
        updated_at=c.now,
    )
    insert_instance(tx, record, child.started_event)


def _set_status(tx: SqlTx, c: StepCommit, instance: dict[str, Any]) -> CommitResult:
    """Rule 5 for a commit that does not recur."""
    if c.status in TERMINAL_STATUSES:
        _finish(tx, c, instance)
        return CommitResult(released=True)
    if c.status == "running":
        return CommitResult()
    unconsumed = inbox_items(tx, c.instance_id)
    if c.status == "waiting" and unconsumed:
        return CommitResult(inbox=unconsumed)
    tx.exec(
        "UPDATE rk_instances SET status = ?, lease_owner = NULL, lease_expires_at = NULL "
        "WHERE instance_id = ?",
        c.status,
        c.instance_id,
    )
    if c.status == "pending":
        tx.notify("runnable")
    return CommitResult(released=True)


def _finish(tx: SqlTx, c: StepCommit, instance: dict[str, Any]) -> None:
    tx.exec(
        "UPDATE rk_instances SET status = ?, output = ?, error = ?, lease_owner = NULL, "
        "lease_expires_at = NULL WHERE instance_id = ?",
        c.status,
        dump_json(c.output),
        dump_json(c.error),
        c.instance_id,
    )
    delete_all(tx, c.instance_id, ["rk_timers", "rk_waits", "rk_subscriptions"])
    parent_id, parent_step = instance["parent_id"], instance["parent_step"]
    if parent_id is None or parent_step is None or c.parent_event is None:
        return
    parent = lock_instance(tx, parent_id)
    if parent is not None and parent["status"] not in TERMINAL_STATUSES:
        deliver_to_inbox(tx, parent_id, c.parent_event, c.now)


def _recur(tx: SqlTx, c: StepCommit, instance: dict[str, Any]) -> None:
    """Continue-as-new: archive this run's history and start the next run."""
    old_run = instance["run"]
    tx.exec(
        "INSERT INTO rk_history_archive (instance_id, run, seq, event) "
        "SELECT instance_id, ?, seq, event FROM rk_history WHERE instance_id = ?",
        old_run,
        c.instance_id,
    )
    delete_all(tx, c.instance_id, ["rk_history", "rk_timers", "rk_waits"])
    for item in inbox_items(tx, c.instance_id):
        if not isinstance(decode_event(item.event), CancelRequested):
            tx.exec("DELETE FROM rk_inbox WHERE id = ?", item.id)
    if c.recur_started is not None:
        append_history(tx, c.instance_id, 0, [c.recur_started])
    tx.exec(
        "UPDATE rk_instances SET run = ?, input = ?, output = NULL, error = NULL, "
        "continued_from = ?, status = 'pending', lease_owner = NULL, lease_expires_at = NULL, "
        "history_len = ? WHERE instance_id = ?",
        old_run + 1,
        dump_json(c.recur_input),
        f"{c.instance_id}@{old_run}",
        0 if c.recur_started is None else 1,
        c.instance_id,
    )
    tx.notify("runnable")

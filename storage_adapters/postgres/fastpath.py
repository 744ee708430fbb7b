"""PostgreSQL fast paths: the most common units of work as ONE statement each.

A step that only appends history and moves the lease/status (an activity result, the end of a
workflow without a parent) and the creation of an instance are written with a single
data-modifying CTE. A single statement is atomic on its own, so outside a transactional
activity it runs in autocommit mode: one round trip instead of BEGIN + several statements +
COMMIT. Everything else goes through the shared algorithms in ``sql_steps``.

The step, the create and the enqueue are :class:`~.prepared.Statement` s: prepared by name on
each pooled connection and run by libpq directly, without a psycopg cursor (see ``prepared``).
The other fast paths (claim, load_run, the targeted event) return rows of several types and keep
psycopg's cursor and loaders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from replaykit.storage import (
    TERMINAL_STATUSES,
    CommitResult,
    Handoff,
    InboxItem,
    InstanceRecord,
    StepCommit,
    StoredEvent,
)

from ..sql_commit import lease_lost
from ..sql_common import INSTANCE_COLUMNS
from ..sql_delivery import event_data, event_row, unknown_target
from ..sql_steps import dump_json, load_json, new_token
from .prepared import PooledConnection, Statement, execute

_event_data_encoder = msgspec.json.Encoder()
#: seconds since the statement began: a lease end ``%s + STATEMENT_AGE`` counts from the write,
#: after any wait for the row's lock
STATEMENT_AGE = "EXTRACT(EPOCH FROM clock_timestamp() - statement_timestamp())::float8"

# Append history and move lease/status in one statement; the other parts only happen when the
# lease check (`l`, which locks the row first, so that the lease end is computed after any wait
# for the lock) matched, because they read from `u`. Built per shape (with or
# without consumed inbox rows; running or terminal) so each prepared statement stays small.
_STEP_HEAD = """
WITH l AS (
    SELECT instance_id FROM rk_instances
    WHERE instance_id = %(instance_id)s AND lease_owner = %(owner)s AND status = 'running'
      AND COALESCE(lease_token, '') = COALESCE(%(token)s::text, '')
    FOR UPDATE
),
u AS (
    UPDATE rk_instances AS r SET
        updated_at = %(now)s,
        history_len = %(history_len)s,
        status = %(status)s,
        {assign}
    FROM l WHERE r.instance_id = l.instance_id
    RETURNING r.instance_id
),
h AS (
    INSERT INTO rk_history (instance_id, seq, event)
    {history}
)"""
# One new event (the common case) binds scalars: no array parameters to build and unnest.
_ONE_EVENT = "SELECT u.instance_id, %(seq)s::integer, %(event)s::bytea FROM u"
_MANY_EVENTS = """SELECT u.instance_id, x.seq, x.event
    FROM u, unnest(%(seqs)s::integer[], %(events)s::bytea[]) AS x(seq, event)"""
_RUNNING_ASSIGN = f"lease_expires_at = %(lease_expires_at)s + {STATEMENT_AGE}"
_TERMINAL_ASSIGN = (
    "output = %(output)s, error = %(error)s, lease_owner = NULL, lease_expires_at = NULL"
)
_INBOX_PART = """,
i AS (
    DELETE FROM rk_inbox
    WHERE instance_id IN (SELECT instance_id FROM u) AND id = ANY(%(consumed)s::bigint[])
)"""
_CLEANUP_PART = """,
t AS (DELETE FROM rk_timers WHERE instance_id IN (SELECT instance_id FROM u)),
w AS (DELETE FROM rk_waits WHERE instance_id IN (SELECT instance_id FROM u)),
s AS (DELETE FROM rk_subscriptions WHERE instance_id IN (SELECT instance_id FROM u))"""


def _step_sql(terminal: bool, consumes: bool, one: bool, clean: bool = False) -> str:
    sql = _STEP_HEAD.format(
        assign=_TERMINAL_ASSIGN if terminal else _RUNNING_ASSIGN,
        history=_ONE_EVENT if one else _MANY_EVENTS,
    )
    if consumes:
        sql += _INBOX_PART
    if terminal and not clean:  # clean: no timer, wait or subscription to look for
        sql += _CLEANUP_PART
    return sql + "\nSELECT instance_id FROM u"


STEP_SQL = {
    (t, c, o, k): _step_sql(t, c, o, k)
    for t in (False, True)
    for c in (False, True)
    for o in (False, True)
    for k in (False, True)
}
# the one event is sent raw (binary); arrays of events go as text (an empty one included)
STEP = {
    (t, c, o, k): Statement(sql, binary=("event",) if o else ())
    for (t, c, o, k), sql in STEP_SQL.items()
}

CREATE_SQL = """
WITH i AS (
    INSERT INTO rk_instances (instance_id, workflow, status, input, output, error, run,
        continued_from, parent_id, parent_step, lease_owner, lease_expires_at, created_at,
        updated_at, version, history_len, event_floor, lease_token)
    VALUES (%(instance_id)s, %(workflow)s, %(status)s, %(input)s, NULL, NULL, %(run)s,
        %(continued_from)s, %(parent_id)s, %(parent_step)s, %(lease_owner)s,
        %(lease_expires_at)s, %(created_at)s, %(updated_at)s, %(version)s, 1,
        (SELECT COALESCE(MAX(id), 0) FROM rk_events), %(lease_token)s)
    ON CONFLICT (instance_id) DO NOTHING
    RETURNING instance_id
),
h AS (
    INSERT INTO rk_history (instance_id, seq, event) SELECT instance_id, 0, %(event)s FROM i
)
SELECT instance_id FROM i
"""
CREATE = Statement(CREATE_SQL, binary=("event",))


# Enqueue without a dedup key: the queue's existence check, the insert, the first history event
# and the NOTIFY in one statement (a dedup key needs the queue's row lock: the shared path).
ENQUEUE_SQL = """
WITH q AS (SELECT name FROM rk_queues WHERE name = %(queue)s),
i AS (
    INSERT INTO rk_instances (instance_id, workflow, status, input, run, created_at, updated_at,
        queue, priority, version, timeout, history_len, event_floor)
    SELECT %(instance_id)s, %(workflow)s, 'queued', %(input)s, 1, %(created_at)s,
        %(updated_at)s, q.name, %(priority)s, %(version)s, %(timeout)s::double precision, 1,
        (SELECT COALESCE(MAX(id), 0) FROM rk_events)
    FROM q
    ON CONFLICT (instance_id) DO NOTHING
    RETURNING instance_id
),
h AS (
    INSERT INTO rk_history (instance_id, seq, event) SELECT instance_id, 0, %(event)s FROM i
)
SELECT (SELECT COUNT(*) FROM q) AS declared,
    (SELECT COUNT(*) FROM i) AS created,
    (SELECT COUNT(pg_notify(%(channel)s, COALESCE(current_schema(), '') || ':runnable'))
     FROM i) AS notified
"""
ENQUEUE = Statement(ENQUEUE_SQL, binary=("event",))

CLAIM_SQL = """
WITH c AS (
    SELECT instance_id, updated_at AS claimed_order FROM rk_instances
    WHERE (status = 'pending' OR (status = 'running' AND lease_expires_at < %(now)s))
      AND (%(any_workflow)s OR workflow = ANY(%(workflows)s))
      AND NOT (instance_id = ANY(%(exclude)s::text[]))
    ORDER BY updated_at, instance_id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE rk_instances AS r SET status = 'running', lease_owner = %(owner)s,
    lease_token = %(token)s, lease_expires_at = %(expires)s + {age}, updated_at = %(now)s
FROM c WHERE r.instance_id = c.instance_id
RETURNING c.claimed_order, {columns}
"""

LOAD_RUN_SQL = """
SELECT 0 AS kind, seq::bigint AS ident, event FROM rk_history WHERE instance_id = %(id)s
UNION ALL
SELECT 1, id, event FROM rk_inbox WHERE instance_id = %(id)s
ORDER BY kind, ident
"""


def claim(
    conn: Any,
    owner: str,
    limit: int,
    expires: float,
    now: float,
    workflows: list[str] | None,
    exclude: list[str],
) -> list[dict[str, Any]]:
    """Claim runnable instances but ``exclude`` in one statement, under a new lease token (rows
    as dicts of INSTANCE_COLUMNS)."""
    params = {
        "owner": owner,
        "token": new_token(),
        "exclude": exclude,
        "expires": expires,
        "now": now,
        "any_workflow": workflows is None,
        "workflows": workflows or [],
        "limit": limit,
    }
    columns = ", ".join(f"r.{name.strip()}" for name in INSTANCE_COLUMNS.split(","))
    sql = CLAIM_SQL.format(columns=columns, age=STATEMENT_AGE)
    cursor = conn.execute(sql, params, prepare=True)
    found = cursor.fetchall()
    names = [column[0] for column in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in found]
    rows.sort(key=lambda row: (row["claimed_order"], row["instance_id"]))  # oldest first
    for row in rows:
        del row["claimed_order"]
    return rows


def load_run(conn: Any, instance_id: str) -> list[tuple[int, int, bytes]]:
    """History (kind 0, by seq) then inbox (kind 1, by id) of an instance."""
    rows: list[tuple[int, int, bytes]] = conn.execute(
        LOAD_RUN_SQL, {"id": instance_id}, prepare=True
    ).fetchall()
    return rows


def step(conn: PooledConnection, c: StepCommit) -> CommitResult:
    """Apply a simple StepCommit with one statement (raises LeaseLost, writing nothing)."""
    terminal = c.status in TERMINAL_STATUSES
    params: dict[str, Any] = {
        "now": c.now,
        "history_len": c.history_len + len(c.events),
        "status": c.status,
        "output": dump_json(c.output),
        "error": dump_json(c.error),
        "lease_expires_at": c.lease_expires_at,
        "instance_id": c.instance_id,
        "owner": c.owner,
        "token": c.lease_token,
        "consumed": c.consumed_inbox,
    }
    one = len(c.events) == 1
    if one:
        params["seq"] = c.history_len
        params["event"] = c.events[0]
    else:
        params["seqs"] = list(range(c.history_len, c.history_len + len(c.events)))
        params["events"] = c.events
    statement = STEP[(terminal, bool(c.consumed_inbox), one, c.clean)]
    if not execute(conn, statement, params).ntuples:
        raise lease_lost(c)
    return CommitResult(released=terminal)


def create(conn: PooledConnection, record: InstanceRecord, started_event: bytes) -> bool:
    """Insert an instance and its first event in one statement; False if the id exists."""
    params = {
        "instance_id": record.instance_id,
        "workflow": record.workflow,
        "status": record.status,
        "input": dump_json(record.input),
        "run": record.run,
        "continued_from": record.continued_from,
        "parent_id": record.parent_id,
        "parent_step": record.parent_step,
        "lease_owner": record.lease_owner,
        "lease_expires_at": record.lease_expires_at,
        "lease_token": record.lease_token,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "version": record.version,
        "event": started_event,
    }
    return execute(conn, CREATE, params).ntuples > 0


def enqueue(
    conn: PooledConnection, record: InstanceRecord, started_event: bytes, channel: str
) -> bool | None:
    """Insert a ``queued`` instance without a dedup key in one statement: True if created,
    False if the id exists, None if the queue is not declared (nothing stored)."""
    params = {
        "queue": record.queue,
        "instance_id": record.instance_id,
        "workflow": record.workflow,
        "input": dump_json(record.input),
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "priority": record.priority,
        "version": record.version,
        "timeout": record.timeout,
        "event": started_event,
        "channel": channel,
    }
    result = execute(conn, ENQUEUE, params)
    declared, created = result.get_value(0, 0), result.get_value(0, 1)  # counts, as text
    return None if declared == b"0" else created != b"0"


# A targeted event (``send_event(..., instance_id=X)``) is one call of the function that
# migration 0008 defines (lock X, store, match a wait, deliver, wake or hand off, notify; see
# there): one round trip in autocommit mode. The EventReceived it puts into the inbox is built
# there with json_build_object from the wait's step and ``event``, the EventData struct encoded
# whole by msgspec.
TARGETED_EVENT_SQL = """
SELECT * FROM rk_deliver_targeted_event(%(target)s, %(type)s, %(source)s, %(event_id)s,
    %(subject)s, %(time)s, %(data)s, %(extensions)s, %(now)s, %(event)s, %(owner)s::text,
    %(expires)s::double precision, %(workflows)s::text[])
"""
# The same, leasing a woken instance to ``owner`` under a new token (migration 0009).
HANDOFF_EVENT_SQL = """
SELECT * FROM rk_deliver_targeted_event_leased(%(target)s, %(type)s, %(source)s, %(event_id)s,
    %(subject)s, %(time)s, %(data)s, %(extensions)s, %(now)s, %(event)s, %(owner)s::text,
    %(expires)s::double precision, %(workflows)s::text[], %(token)s::text)
"""


def targeted_event(
    conn: Any,
    event: StoredEvent,
    now: float,
    *,
    owner: str | None = None,
    expires: float | None = None,
    workflows: Sequence[str] = (),
) -> tuple[bool, list[str], Handoff | None]:
    """Store and deliver an event for one instance in one statement (see TARGETED_EVENT_SQL).

    With ``owner``, an instance of one of ``workflows`` that the event wakes from ``waiting`` is
    leased to ``owner`` at once
    (hand-off to a local worker: no NOTIFY, no separate claim) and returned with its history and
    inbox. Returns (stored, woken ids, hand-off or None)."""
    assert event.target is not None
    columns = event_row(event)
    params = {
        **columns,
        "target": event.target,
        "now": now,
        "event": _event_data_encoder.encode(event_data(columns)).decode(),
        "owner": owner,
        "expires": expires,
        "workflows": list(workflows),
        "token": new_token() if owner is not None else None,
    }
    sql = TARGETED_EVENT_SQL if owner is None else HANDOFF_EVENT_SQL
    row = conn.execute(sql, params, prepare=True).fetchone()
    (found, stored, woken, handed, workflow, input_, run, continued_from, parent_id) = row[:9]
    parent_step, created_at, history_len, history, inbox_ids, inbox = row[9:]
    if not found:
        raise unknown_target(event)
    handoff = None
    if handed:
        assert owner is not None
        record = InstanceRecord(
            instance_id=event.target,
            workflow=workflow,
            status="running",
            input=load_json(input_),
            run=run,
            continued_from=continued_from,
            parent_id=parent_id,
            parent_step=parent_step,
            lease_owner=owner,
            lease_token=params["token"],
            lease_expires_at=expires,
            created_at=float(created_at),
            updated_at=now,
            history_len=history_len,
        )
        handoff = Handoff(
            record=record,
            history=[bytes(b) for b in history or ()],
            inbox=[
                InboxItem(id=ident, instance_id=event.target, event=bytes(b))
                for ident, b in zip(inbox_ids or (), inbox or (), strict=True)
            ],
        )
    return bool(stored), [event.target] if woken else [], handoff

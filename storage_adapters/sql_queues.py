"""Queues in SQL (see ``replaykit.core.queues``): declare a queue, enqueue with deduplication, the
admission step, counts for operators. Functions over an open transaction.

Every admission and every deduplicating enqueue of a queue first locks the queue's ``rk_queues``
row (``{FOR_UPDATE}``: PostgreSQL and MySQL; SQLite's write transaction keeps every other writer
out already), so the counts an admission reads cannot change under it until it commits: two
workers never both see the last free slot. Under READ COMMITTED each later statement of the
transaction sees what the previous holder of the lock committed. Lock order: the queue row, then
instance rows (as everywhere else, an instance's own rows after it), so admissions do not
deadlock with steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from replaykit.core.effects import admitted_start
from replaykit.core.errors import DuplicateQueueKey, UnknownQueue
from replaykit.core.history import WorkflowStarted, decode_event, encode_event
from replaykit.core.queues import Admission, QueueSpec, QueueStats, admission
from replaykit.storage import InstanceRecord, TimerSpec

from .sql_commit import insert_timer
from .sql_steps import SqlTx, insert_instance, placeholders, update_where

#: admitted and not finished: what a queue's concurrency limits count
UNFINISHED = "status IN ('pending', 'running', 'waiting')"
SPEC_COLUMNS = "name, concurrency, per_worker, rate_limit, rate_period"


def spec_from_row(row: dict[str, Any]) -> QueueSpec:
    period = row["rate_period"]
    return QueueSpec(
        name=row["name"],
        concurrency=row["concurrency"],
        per_worker=row["per_worker"],
        rate_limit=row["rate_limit"],
        rate_period=None if period is None else float(period),
    )


def declare(tx: SqlTx, spec: QueueSpec, now: float) -> None:
    """Insert the queue's row, or replace its limits."""
    limits = (spec.concurrency, spec.per_worker, spec.rate_limit, spec.rate_period)
    tx.exec(
        f"INSERT INTO rk_queues ({SPEC_COLUMNS}, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
        + tx.update_duplicate(
            "(name)",
            "concurrency = ?, per_worker = ?, rate_limit = ?, rate_period = ?, updated_at = ?",
        ),
        spec.name,
        *limits,
        now,
        *limits,
        now,
    )


def get_spec(tx: SqlTx, name: str, *, lock: bool) -> QueueSpec | None:
    """The queue's limits (``lock``: and its row locked until the transaction ends)."""
    sql = f"SELECT {SPEC_COLUMNS} FROM rk_queues WHERE name = ?"
    row = tx.one(sql + "{FOR_UPDATE}" if lock else sql, name)
    return None if row is None else spec_from_row(row)


def enqueue(tx: SqlTx, record: InstanceRecord, started_event: bytes) -> bool:
    """Insert a ``queued`` instance (see ``Storage.enqueue``); False if the id exists."""
    assert record.queue is not None and record.status == "queued"
    if get_spec(tx, record.queue, lock=record.dedup_key is not None) is None:
        raise unknown_queue(record)
    exists = tx.one("SELECT 1 AS x FROM rk_instances WHERE instance_id = ?", record.instance_id)
    if exists is not None:
        return False
    if record.dedup_key is not None:
        holder = tx.one(
            f"SELECT instance_id FROM rk_instances WHERE queue = ? AND dedup_key = ? "
            f"AND (status = 'queued' OR {UNFINISHED})",
            record.queue,
            record.dedup_key,
        )
        if holder is not None:
            raise duplicate_key(record, holder["instance_id"])
    return insert_instance(tx, record, started_event)


def unknown_queue(record: InstanceRecord) -> UnknownQueue:
    return UnknownQueue(
        f"no queue named {record.queue!r}: declare it first with app.queue({record.queue!r}); "
        f"{record.instance_id!r} was not enqueued"
    )


def duplicate_key(record: InstanceRecord, holder: str) -> DuplicateQueueKey:
    return DuplicateQueueKey(
        f"queue {record.queue!r} already has an unfinished instance {holder!r} with "
        f"deduplication key {record.dedup_key!r}; {record.instance_id!r} was not enqueued "
        "(enqueue it again once that one has finished, or use another key)",
        queue=record.queue or "",
        key=record.dedup_key or "",
        instance_id=holder,
    )


def queues_with_work(
    tx: SqlTx, queues: Sequence[str], workflows: Sequence[str] | None
) -> list[str]:
    """Those of ``queues`` holding ``queued`` instances (of ``workflows``), by name."""
    only = f" AND workflow IN ({placeholders(workflows)})" if workflows is not None else ""
    rows = tx.rows(
        f"SELECT DISTINCT queue FROM rk_instances WHERE status = 'queued' "
        f"AND queue IN ({placeholders(queues)}){only}",
        *queues,
        *(workflows or ()),
    )
    return sorted(str(row["queue"]) for row in rows)


def admit(
    tx: SqlTx,
    name: str,
    owner: str,
    *,
    limit: int,
    now: float,
    workflows: Sequence[str] | None,
) -> tuple[list[str], float | None]:
    """The admission step for one queue, under its row lock: (ids made pending, retry_at)."""
    spec = get_spec(tx, name, lock=True)
    if spec is None or limit <= 0:
        return [], None
    only = f" AND workflow IN ({placeholders(workflows)})" if workflows is not None else ""
    candidates = tx.rows(
        "SELECT instance_id, timeout FROM rk_instances WHERE queue = ? "
        f"AND status = 'queued'{only} ORDER BY priority DESC, created_at, instance_id LIMIT ?",
        name,
        *(workflows or ()),
        limit,
    )
    if not candidates:
        return [], None
    decision = _decide(tx, spec, owner, wanted=len(candidates), now=now)
    ids = [row["instance_id"] for row in candidates[: decision.count]]
    if not ids:
        return [], decision.retry_at
    rows = update_where(
        tx,
        "rk_instances",
        "instance_id",
        (f"instance_id IN ({placeholders(ids)}) AND status = 'queued'", ids),
        "status = 'pending', admitted_at = ?, admitted_by = ?, updated_at = ?",
        now,
        owner,
        now,
        returning="instance_id",
    )
    tx.notify("runnable")
    admitted = {row["instance_id"] for row in rows}
    for row in candidates[: decision.count]:
        if row["timeout"] is not None and row["instance_id"] in admitted:
            _start_deadline(tx, row["instance_id"], float(row["timeout"]), now)
    return [i for i in ids if i in admitted], decision.retry_at


def _start_deadline(tx: SqlTx, instance_id: str, timeout: float, now: float) -> None:
    """An instance enqueued with ``timeout`` was admitted at ``now``: its deadline clock starts
    (``admitted_start``): the deadline column, the deadline timer, and the first history event
    (which nothing has read yet) with the deadline, as ``start_workflow(timeout=)`` stores them."""
    row = tx.one("SELECT event FROM rk_history WHERE instance_id = ? AND seq = 0", instance_id)
    assert row is not None
    started = decode_event(bytes(row["event"]))
    assert isinstance(started, WorkflowStarted)
    started, timer = admitted_start(started, timeout, now)
    tx.exec(
        "UPDATE rk_history SET event = ? WHERE instance_id = ? AND seq = 0",
        encode_event(started),
        instance_id,
    )
    tx.exec(
        "UPDATE rk_instances SET deadline = ? WHERE instance_id = ?", timer.fire_at, instance_id
    )
    spec = TimerSpec(step=timer.step, fire_at=timer.fire_at, event=encode_event(timer.event))
    insert_timer(tx, instance_id, spec)


def _decide(tx: SqlTx, spec: QueueSpec, owner: str, *, wanted: int, now: float) -> Admission:
    """Count what the queue's limits need and apply the core rule."""
    running = mine = 0
    if spec.concurrency is not None:
        row = tx.one(
            f"SELECT COUNT(*) AS n FROM rk_instances WHERE queue = ? AND {UNFINISHED}", spec.name
        )
        running = int(row["n"]) if row else 0
    if spec.per_worker is not None:
        row = tx.one(
            f"SELECT COUNT(*) AS n FROM rk_instances WHERE queue = ? AND {UNFINISHED} "
            "AND admitted_by = ?",
            spec.name,
            owner,
        )
        mine = int(row["n"]) if row else 0
    recent: list[float] = []
    if spec.rate_period is not None:
        rows = tx.rows(
            "SELECT admitted_at FROM rk_instances WHERE queue = ? AND admitted_at > ?",
            spec.name,
            now - spec.rate_period,
        )
        recent = [float(row["admitted_at"]) for row in rows]
    return admission(spec, wanted=wanted, running=running, mine=mine, recent=recent, now=now)


def queue_stats(tx: SqlTx) -> list[QueueStats]:
    """Every declared queue with its queued and running counts."""
    specs = [spec_from_row(row) for row in tx.rows(f"SELECT {SPEC_COLUMNS} FROM rk_queues")]
    counts = tx.rows(
        "SELECT queue, status, COUNT(*) AS n FROM rk_instances WHERE queue IS NOT NULL "
        f"AND (status = 'queued' OR {UNFINISHED}) GROUP BY queue, status"
    )
    queued: dict[str, int] = {}
    running: dict[str, int] = {}
    for row in counts:
        target = queued if row["status"] == "queued" else running
        target[row["queue"]] = target.get(row["queue"], 0) + int(row["n"])
    return [
        QueueStats(spec=spec, queued=queued.get(spec.name, 0), running=running.get(spec.name, 0))
        for spec in sorted(specs, key=lambda s: s.name)
    ]

"""Applying a :class:`~replaykit.storage.StepCommit` (the order its docstring gives), registering
waits and timers, firing due timers. Functions over an open transaction."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from replaykit.core.effects import DEADLINE_STEP
from replaykit.core.errors import LeaseLost
from replaykit.core.history import (
    CancelRequested,
    decode_event,
)
from replaykit.storage import (
    TERMINAL_STATUSES,
    CancelSpec,
    ChildSpec,
    CommitResult,
    InstanceRecord,
    StepCommit,
    TimerSpec,
    WaitSpec,
)

from .sql_delivery import apply_subscription, publish, take_available_event, take_available_message
from .sql_steps import (
    APPEND_HISTORY,
    SqlTx,
    add_to_inbox,
    append_history,
    deliver_to_inbox,
    drop_timer,
    dump_json,
    inbox_items,
    insert_instance,
    lock_instance,
    placeholders,
    update_where,
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
        "SELECT instance_id, step FROM rk_timers WHERE fire_at <= ? "
        "ORDER BY fire_at, instance_id, step LIMIT ?",
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
            # Another transaction holds the instance (on MySQL even a moment's lock taken by a
            # scan of rk_instances, e.g. a claim's): stop here and fire it and the timers after
            # it next round. Firing the later ones now would wake instances out of due order:
            # timers due together would run in the order of whatever happened to be locked.
            break
        fired = _take_timer(tx, instance_id, timer["step"])
        if fired is None or instance["status"] in TERMINAL_STATUSES:
            continue
        if fired["is_timeout"] and not tx.run(
            "DELETE FROM rk_waits WHERE instance_id = ? AND step = ?", instance_id, timer["step"]
        ):
            continue  # the wait was satisfied first: the timeout is void
        deliver_to_inbox(tx, instance_id, bytes(fired["event"]), now)
        if timer["step"] == DEADLINE_STEP:  # a cancellation: it reads cancelling until it ends
            mark_cancel_requested(tx, instance_id, now)
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
#: the lease a step needs: still running, held by its owner under the token of its claim
#: (parameters: owner, token; a lease taken without a token matches only a step without one)
HELD = "status = 'running' AND lease_owner = ? AND COALESCE(lease_token, '') = COALESCE(?, '')"


def commit_keys(commit: StepCommit) -> list[str]:
    keys = [f"{wait.kind}:{wait.key}" for wait in commit.waits]
    keys += [f"message:{p.channel}" for p in commit.publishes]
    keys += [f"message:{s.channel}" for s in commit.subscriptions]
    return keys


def is_simple(c: StepCommit) -> bool:
    """Whether ``c`` only appends history, consumes inbox rows and moves the lease/status (the
    most common step: an activity's result, the end of a workflow without a parent)."""
    return not (
        c.timers
        or c.waits
        or c.cancel_steps
        or c.publishes
        or c.subscriptions
        or c.children
        or c.cancel_children
        or c.outbox
        or c.recur
        or c.parent_event is not None
        or c.status not in _SIMPLE_STATUSES
    )


_SIMPLE_STATUSES = frozenset(("running", *TERMINAL_STATUSES))
_SIMPLE_RUNNING = (
    "UPDATE rk_instances SET lease_expires_at = ?, updated_at = ?, history_len = ? "
    f"WHERE instance_id = ? AND {HELD}"
)
_SIMPLE_TERMINAL = (
    "UPDATE rk_instances SET status = ?, output = ?, error = ?, lease_owner = NULL, "
    f"lease_expires_at = NULL, updated_at = ?, history_len = ? WHERE instance_id = ? AND {HELD}"
)


def apply_simple(execute: Callable[[str, Sequence[Any]], Any], c: StepCommit) -> CommitResult:
    """Apply a simple StepCommit (:func:`is_simple`) with ``execute(sql, params)`` returning the
    driver's cursor, statement by statement with no dialect placeholder: for a database whose
    write transaction already holds the instance's row (SQLite's ``BEGIN IMMEDIATE``), so the
    lease end ``c.lease_expires_at`` is the write's. Raises LeaseLost, writing nothing (the
    lease check is the first statement)."""
    instance_id, history_len = c.instance_id, c.history_len
    end = history_len + len(c.events)
    terminal = c.status != "running"
    if terminal:
        params: tuple[Any, ...] = (
            c.status,
            dump_json(c.output),
            dump_json(c.error),
            c.now,
            end,
            instance_id,
            c.owner,
            c.lease_token,
        )
        changed = execute(_SIMPLE_TERMINAL, params).rowcount
    else:
        params = (c.lease_expires_at, c.now, end, instance_id, c.owner, c.lease_token)
        changed = execute(_SIMPLE_RUNNING, params).rowcount
    if changed != 1:
        raise lease_lost(c)
    if c.consumed_inbox:
        consumed = placeholders(c.consumed_inbox)
        execute(
            f"DELETE FROM rk_inbox WHERE instance_id = ? AND id IN ({consumed})",
            (instance_id, *c.consumed_inbox),
        )
    for seq, event in enumerate(c.events, history_len):
        execute(APPEND_HISTORY, (instance_id, seq, event))
    if terminal and not c.clean:
        for table in _CLEANUP:
            execute(f"DELETE FROM {table} WHERE instance_id = ?", (instance_id,))
    return CommitResult(released=terminal)


_CLEANUP = ("rk_timers", "rk_waits", "rk_subscriptions")


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
    checked = time.monotonic()
    found = update_where(
        tx,
        "rk_instances",
        "instance_id",
        (f"instance_id = ? AND {HELD}", (c.instance_id, c.owner, c.lease_token)),
        "lease_expires_at = ? + {AGE}, updated_at = ?, history_len = ?",
        lambda: c.lease_expires_at + time.monotonic() - checked,  # + any wait for the row lock
        c.now,
        c.history_len + len(c.events),
        returning="run, parent_id, parent_step, event_floor",
        fresh=False,
    )
    if not found:
        raise lease_lost(c)
    return found[0]


def lease_lost(c: StepCommit) -> LeaseLost:
    """The error for a step whose worker no longer holds the instance's lease."""
    return LeaseLost(
        f"instance {c.instance_id!r}: worker {c.owner!r} no longer holds the lease this step "
        "ran under (another worker, or a later claim, took it over); the step was not recorded",
        instance_id=c.instance_id,
        owner=c.owner,
    )


def _apply_effects(tx: SqlTx, c: StepCommit) -> None:
    """Rule 3: cancelled steps, timers, subscriptions, children, publishes, outbox."""
    delete_steps(tx, c.instance_id, c.cancel_steps)
    for timer in c.timers:
        insert_timer(tx, c.instance_id, timer)
    for sub in c.subscriptions:
        apply_subscription(tx, c.instance_id, sub, c.now)
    for child in c.children:
        _insert_child(tx, c, child)
    for cancel in c.cancel_children:
        _cancel_child(tx, c, cancel)
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
        version=child.version,
        deadline=None if child.deadline is None else child.deadline.fire_at,
    )
    if insert_instance(tx, record, child.started_event) and child.deadline is not None:
        insert_timer(tx, child.instance_id, child.deadline)


def _cancel_child(tx: SqlTx, c: StepCommit, cancel: CancelSpec) -> None:
    """Cancel a child of the committing instance unless it has ended (parent-close policy)."""
    child = tx.one(
        "SELECT status, parent_id FROM rk_instances WHERE instance_id = ?{FOR_UPDATE}",
        cancel.instance_id,
    )
    if child is None or child["parent_id"] != c.instance_id:
        return  # an instance id the child command named that belongs to someone else
    if child["status"] not in TERMINAL_STATUSES:
        deliver_to_inbox(tx, cancel.instance_id, cancel.event, c.now)
        mark_cancel_requested(tx, cancel.instance_id, c.now)


def mark_cancel_requested(tx: SqlTx, instance_id: str, now: float) -> None:
    """A cancellation was asked for (``cancel()``, a deadline, a parent): the instance reads
    ``cancelling`` until it ends; the first request's time is kept."""
    tx.exec(
        "UPDATE rk_instances SET cancel_requested_at = ? "
        "WHERE instance_id = ? AND cancel_requested_at IS NULL",
        now,
        instance_id,
    )


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
    if not c.clean:
        delete_all(tx, c.instance_id, _CLEANUP)
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
    delete_all(tx, c.instance_id, ["rk_history", "rk_waits"])
    tx.exec(  # the deadline timer (step 0) is the instance's, not the run's
        "DELETE FROM rk_timers WHERE instance_id = ? AND step <> 0", c.instance_id
    )
    for item in inbox_items(tx, c.instance_id):
        if not isinstance(decode_event(item.event), CancelRequested):
            tx.exec("DELETE FROM rk_inbox WHERE id = ?", item.id)
    if c.recur_started is not None:
        append_history(tx, c.instance_id, 0, [c.recur_started])
    tx.exec(
        "UPDATE rk_instances SET run = ?, input = ?, output = NULL, error = NULL, "
        "continued_from = ?, status = 'pending', lease_owner = NULL, lease_expires_at = NULL, "
        "history_len = ?, version = COALESCE(?, version) WHERE instance_id = ?",
        old_run + 1,
        dump_json(c.recur_input),
        f"{c.instance_id}@{old_run}",
        0 if c.recur_started is None else 1,
        c.recur_version,
        c.instance_id,
    )
    tx.notify("runnable")

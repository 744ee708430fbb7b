"""Schedules on SQL: the ``rk_schedules`` table (migration 0015) and the firing algorithm.

What a schedule does is decided by ``replaykit.core.schedules``; this module only stores it.
Firing (:meth:`ScheduleSql.fire_due_schedules`) takes the due schedule rows with a row lock
that skips rows another worker holds, creates the instances of the chosen ticks and moves the
schedule on, in one transaction. Exactly once per tick does not rest on that lock: a tick's
instance id is derived from the schedule and the tick, and the instance table's primary key
turns a second start into a no-op (a worker that read the row before another one moved it on
starts nothing new).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from replaykit.core.errors import ScheduleNotFound
from replaykit.core.schedules import (
    Schedule,
    ScheduleSpec,
    fired,
    merge_schedule,
    plan_firing,
    set_paused,
    tick_instance_id,
)
from replaykit.storage import scheduled_instance

from .sql_steps import SqlTx, insert_instance

COLUMNS = "schedule_id, workflow, spec, paused, next_fire_at, last_tick, created_at, updated_at"
_spec_decoder = msgspec.json.Decoder(ScheduleSpec)
_spec_encoder = msgspec.json.Encoder()


def schedule_from_row(row: dict[str, Any]) -> Schedule:
    spec = row["spec"]
    return Schedule(
        schedule_id=row["schedule_id"],
        workflow=row["workflow"],
        spec=_spec_decoder.decode(spec.encode() if isinstance(spec, str) else spec),
        paused=bool(row["paused"]),
        next_fire_at=None if row["next_fire_at"] is None else float(row["next_fire_at"]),
        last_tick=None if row["last_tick"] is None else float(row["last_tick"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
    )


def _spec_text(schedule: Schedule) -> str:
    return _spec_encoder.encode(schedule.spec).decode()


def _locked(tx: SqlTx, schedule_id: str) -> Schedule | None:
    row = tx.one(
        f"SELECT {COLUMNS} FROM rk_schedules WHERE schedule_id = ?{{FOR_UPDATE}}", schedule_id
    )
    return None if row is None else schedule_from_row(row)


def _write(tx: SqlTx, schedule: Schedule) -> None:
    tx.run(
        "UPDATE rk_schedules SET workflow = ?, spec = ?, paused = ?, next_fire_at = ?, "
        "last_tick = ?, updated_at = ? WHERE schedule_id = ?",
        schedule.workflow,
        _spec_text(schedule),
        int(schedule.paused),
        schedule.next_fire_at,
        schedule.last_tick,
        schedule.updated_at,
        schedule.schedule_id,
    )
    tx.notify("timer")


def _insert(tx: SqlTx, schedule: Schedule) -> bool:
    inserted = tx.run(
        f"INSERT INTO rk_schedules ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        + tx.ignore_duplicate("(schedule_id)", "schedule_id"),
        schedule.schedule_id,
        schedule.workflow,
        _spec_text(schedule),
        int(schedule.paused),
        schedule.next_fire_at,
        schedule.last_tick,
        schedule.created_at,
        schedule.updated_at,
    )
    if inserted:
        tx.notify("timer")
    return bool(inserted)


def fire_due(tx: SqlTx, *, now: float, limit: int) -> list[str]:
    """Fire the schedules due at ``now`` (see the module docstring); the instances created."""
    rows = tx.rows(
        f"SELECT {COLUMNS} FROM rk_schedules WHERE paused = 0 AND next_fire_at <= ? "
        "ORDER BY next_fire_at, schedule_id LIMIT ?{SKIP_LOCKED}",
        now,
        limit,
    )
    created = []
    for row in rows:
        schedule = schedule_from_row(row)
        firing = plan_firing(schedule, now)
        for tick in firing.ticks:
            instance_id = tick_instance_id(schedule.schedule_id, tick)
            if insert_instance(tx, *scheduled_instance(schedule, instance_id, now)):
                created.append(instance_id)
        after = fired(schedule, firing, now)
        tx.run(
            "UPDATE rk_schedules SET next_fire_at = ?, last_tick = ?, updated_at = ? "
            "WHERE schedule_id = ?",
            after.next_fire_at,
            after.last_tick,
            after.updated_at,
            schedule.schedule_id,
        )
    return created


class ScheduleSql:
    """The schedule methods of the Storage protocol, mixed into ``SqlStorage``."""

    _run: Callable[..., Any]
    _read: Callable[..., Any]

    def save_schedule(self, schedule: Schedule) -> tuple[Schedule, bool]:
        def work(tx: SqlTx) -> tuple[Schedule, bool]:
            stored = _locked(tx, schedule.schedule_id)
            if stored is None:
                if _insert(tx, schedule):
                    return schedule, True
                stored = _locked(tx, schedule.schedule_id)  # inserted meanwhile by another
                assert stored is not None
            merged = merge_schedule(stored, schedule)
            if merged is None:
                return stored, False
            _write(tx, merged)
            return merged, True

        result: tuple[Schedule, bool] = self._run(work)
        return result

    def get_schedule(self, schedule_id: str) -> Schedule | None:
        sql = f"SELECT {COLUMNS} FROM rk_schedules WHERE schedule_id = ?"
        row = self._read(lambda tx: tx.one(sql, schedule_id))
        return None if row is None else schedule_from_row(row)

    def list_schedules(self) -> list[Schedule]:
        sql = f"SELECT {COLUMNS} FROM rk_schedules ORDER BY schedule_id"
        return [schedule_from_row(row) for row in self._read(lambda tx: tx.rows(sql))]

    def delete_schedule(self, schedule_id: str) -> bool:
        sql = "DELETE FROM rk_schedules WHERE schedule_id = ?"
        return bool(self._run(lambda tx: tx.run(sql, schedule_id)))

    def pause_schedule(self, schedule_id: str, paused: bool, *, now: float) -> Schedule:
        def work(tx: SqlTx) -> Schedule:
            stored = _locked(tx, schedule_id)
            if stored is None:
                raise ScheduleNotFound(f"no schedule with id {schedule_id!r}")
            changed = set_paused(stored, paused, now)
            if changed is not stored:
                _write(tx, changed)
            return changed

        result: Schedule = self._run(work)
        return result

    def fire_due_schedules(self, *, now: float, limit: int = 100) -> list[str]:
        result: list[str] = self._run(lambda tx: fire_due(tx, now=now, limit=limit))
        return result

    def next_schedule_at(self) -> float | None:
        sql = "SELECT MIN(next_fire_at) AS at FROM rk_schedules WHERE paused = 0"
        row = self._read(lambda tx: tx.one(sql))
        return None if row is None or row["at"] is None else float(row["at"])


__all__ = ["ScheduleSql", "fire_due", "schedule_from_row"]

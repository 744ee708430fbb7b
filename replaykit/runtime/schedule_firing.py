"""How a worker fires schedules: from its timer loop, whichever worker gets there first."""

from __future__ import annotations

from ..storage import Storage


def fire_schedules(storage: Storage, now: float) -> tuple[list[str], float | None]:
    """Fire the schedules due at ``now`` (a write only when one is due); the instances
    started, and when the next schedule is due."""
    due = storage.next_schedule_at()
    if due is None or due > now:
        return [], due
    started = storage.fire_due_schedules(now=now)
    return started, storage.next_schedule_at()


__all__ = ["fire_schedules"]

"""Named queues: what a queue is, and the one rule that decides how many of its instances may
start now (pure: every store, SQL or in memory, counts and calls :func:`admission`).

An instance started on a queue is stored ``queued``: no worker can claim it. An *admission* step
turns queued instances into ``pending`` ones (then they are claimed and run as any other), in
priority order (higher first, FIFO within a priority), as many as the queue's limits allow. The
store counts, under a lock that keeps other admissions of the same queue out (PostgreSQL/MySQL:
the queue's row ``FOR UPDATE``; SQLite: the write lock; memory: one thread):

* ``running``  its instances admitted and not finished (pending, running or waiting);
* ``mine``     those of them admitted by the worker asking (for ``per_worker``);
* ``recent``   the admission times within the last ``rate_period`` seconds (for ``rate_limit``).

:func:`admission` turns those counts into how many to admit now and, when the rate limit is what
stops it, the time at which the next one may start.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

from .errors import InvalidInput
from .validation import MAX_ID_LENGTH, check_id

#: the longest queue name: queue names follow the id rule (``core.validation.check_id``)
MAX_NAME = MAX_ID_LENGTH


class QueueSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A queue's limits (``None``: no limit of that kind).

    ``concurrency``  how many of its instances run at once across every worker and machine
                     (running = admitted and not finished, also while it sleeps or waits);
    ``per_worker``   how many of its unfinished instances one worker has admitted;
    ``rate_limit`` / ``rate_period``  at most ``rate_limit`` admissions in any ``rate_period``
                     seconds.
    """

    name: str
    concurrency: int | None = None
    per_worker: int | None = None
    rate_limit: int | None = None
    rate_period: float | None = None

    def __post_init__(self) -> None:
        check_id(self.name, "queue name")
        for field in ("concurrency", "per_worker", "rate_limit"):
            value = getattr(self, field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidInput(f"queue {self.name!r}: {field} must be an int, not {value!r}")
            if value is not None and value < 1:
                raise InvalidInput(f"queue {self.name!r}: {field} must be at least 1")
        if (self.rate_limit is None) != (self.rate_period is None):
            raise InvalidInput(
                f"queue {self.name!r}: give a rate limit as rate=(starts, seconds), both set"
            )
        period = self.rate_period
        if period is not None and (
            isinstance(period, bool)
            or not isinstance(period, int | float)
            or not math.isfinite(period)
            or period <= 0
        ):
            raise InvalidInput(f"queue {self.name!r}: the rate period must be > 0 seconds")

    def limits(self) -> dict[str, int | float | None]:
        """The limits by name (for operators: stats, CLI, viewer)."""
        return {
            "concurrency": self.concurrency,
            "per_worker": self.per_worker,
            "rate_limit": self.rate_limit,
            "rate_period": self.rate_period,
        }


class QueueStats(msgspec.Struct, frozen=True, kw_only=True):
    """A queue's limits and how many of its instances wait to start (``queued``) and are
    ``running`` (admitted, not finished)."""

    spec: QueueSpec
    queued: int = 0
    running: int = 0


class Admission(msgspec.Struct, frozen=True, kw_only=True):
    """How many queued instances to admit now; ``retry_at``: when the rate limit lets the next
    one start (None: it is not the rate limit that stops admissions, or nothing does)."""

    count: int
    retry_at: float | None = None


def queue_spec(
    name: str,
    *,
    concurrency: int | None = None,
    per_worker: int | None = None,
    rate: tuple[int, float] | None = None,
) -> QueueSpec:
    """A :class:`QueueSpec` from the arguments users write (``rate=(10, 1.0)``: 10 per second)."""
    if rate is not None and not (isinstance(rate, tuple) and len(rate) == 2):
        raise InvalidInput(f"queue {name!r}: rate must be a tuple (starts, seconds)")
    limit, period = rate if rate is not None else (None, None)
    return QueueSpec(
        name=name,
        concurrency=concurrency,
        per_worker=per_worker,
        rate_limit=limit,
        rate_period=None if period is None else float(period),
    )


def queue_name(queue: str | QueueSpec) -> str:
    """The name of ``queue`` (a name or a spec), held to the id rule (InvalidInput, argument
    ``"queue name"``): an instance stores it."""
    return queue.name if isinstance(queue, QueueSpec) else check_id(queue, "queue name")


def admission(
    spec: QueueSpec,
    *,
    wanted: int,
    running: int,
    mine: int,
    recent: Sequence[float],
    now: float,
) -> Admission:
    """How many of ``wanted`` queued instances may be admitted at ``now``.

    ``running``/``mine``/``recent`` are the counts the module docstring defines (``recent``:
    admission times later than ``now - rate_period``, in any order)."""
    room = max(wanted, 0)
    if spec.concurrency is not None:
        room = min(room, spec.concurrency - running)
    if spec.per_worker is not None:
        room = min(room, spec.per_worker - mine)
    retry_at = None
    if spec.rate_limit is not None and spec.rate_period is not None:
        starts = sorted(t for t in recent if t > now - spec.rate_period)
        left = spec.rate_limit - len(starts)
        if left <= 0 and room > 0:
            # the window holds rate_limit starts or more: the next start may happen once the
            # oldest of the newest rate_limit - 1 leaves it
            retry_at = starts[len(starts) - spec.rate_limit] + spec.rate_period
        room = min(room, left)
    return Admission(count=max(room, 0), retry_at=retry_at)


__all__ = [
    "MAX_NAME",
    "Admission",
    "QueueSpec",
    "QueueStats",
    "admission",
    "queue_name",
    "queue_spec",
]

"""Schedules: when a schedule's ticks fall, and what firing one means (pure).

A schedule starts its workflow on every *tick*: the times of a cron expression in a time zone
(parsed and stepped by ``croniter``, zones from ``zoneinfo``), or every ``every`` seconds from
``start_at`` (default: multiples of the interval since the Unix epoch). Each tick's instance has
an id derived from the schedule and the tick, :func:`tick_instance_id`, so starting it twice is
a no-op: that, not any lock, is what makes a tick fire exactly once however many workers run.

After downtime several ticks may be due at once; the schedule's ``catch_up`` policy chooses:

* ``"skip"`` (default): only the latest due tick, and only if it is at most ``grace`` seconds
  late; the others are skipped;
* ``"last"``: only the latest due tick, however late;
* ``"all"``: every missed tick, oldest first (:func:`plan_firing` returns at most ``limit`` at a
  time; the next call continues).

Storage adapters, the in-memory test store and the App all use these functions, so a schedule
ticks the same way on a database and on the virtual clock.
"""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Unpack
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from croniter import CroniterError, croniter

from .errors import InvalidInput
from .history import WorkflowStarted

if TYPE_CHECKING:
    from .definitions import Workflow

CatchUp = Literal["skip", "last", "all"]
CATCH_UP_POLICIES: tuple[str, ...] = ("skip", "last", "all")
MAX_SCHEDULE_ID = 150  # the tick suffix keeps instance ids within their 200 characters


class ScheduleSpec(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """When a schedule fires and with what input (``input`` is already encoded to builtins)."""

    cron: str | None = None
    every: float | None = None
    timezone: str = "UTC"
    catch_up: CatchUp = "skip"
    grace: float = 60.0
    start_at: float = 0.0
    input: Any = None


class Schedule(msgspec.Struct, kw_only=True):
    """A stored schedule: its spec and its state (``next_fire_at`` is None while paused)."""

    schedule_id: str
    workflow: str
    spec: ScheduleSpec
    paused: bool = False
    next_fire_at: float | None = None
    last_tick: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


class Firing(msgspec.Struct, frozen=True, kw_only=True):
    """What firing a due schedule does: start ``ticks`` and wait for ``next_fire_at``."""

    ticks: list[float]
    next_fire_at: float


class ScheduleOptions(TypedDict, total=False):
    """The keyword arguments of ``App.schedule`` (and of the test environment's)."""

    cron: str | None
    every: float | None
    timezone: str
    catch_up: str
    grace: float
    start_at: float | datetime | None
    schedule_id: str | None
    paused: bool


SPEC_OPTIONS = ("cron", "every", "timezone", "catch_up", "grace", "start_at")


def build_schedule(
    workflow: Workflow[Any, Any], input: Any, now: float, **options: Unpack[ScheduleOptions]
) -> Schedule:
    """The schedule ``App.schedule(workflow, input, **options)`` saves at ``now``: the input
    encoded for the workflow, the spec checked (InvalidInput otherwise)."""
    raw = workflow.encode_input(input)
    spec = spec_of(options, raw)
    given = options.get("schedule_id")
    schedule_id = workflow.name if given is None else given  # "" is refused, not defaulted
    return new_schedule(
        schedule_id, workflow.name, spec, now, paused=bool(options.get("paused", False))
    )


def spec_of(options: ScheduleOptions, input: Any = None) -> ScheduleSpec:
    """The checked spec of schedule ``options`` (InvalidInput otherwise)."""
    spec_options: dict[str, Any] = {k: v for k, v in options.items() if k in SPEC_OPTIONS}
    return make_spec(**spec_options, input=input)


# -- validation -----------------------------------------------------------------------------------


def make_spec(
    *,
    cron: str | None = None,
    every: float | None = None,
    timezone: str = "UTC",
    catch_up: str = "skip",
    grace: float = 60.0,
    start_at: float | datetime | None = None,
    input: Any = None,
) -> ScheduleSpec:
    """A checked :class:`ScheduleSpec`; InvalidInput names what is wrong."""
    if (cron is None) == (every is None):
        raise InvalidInput("a schedule needs exactly one of cron= (an expression) or every= (s)")
    if cron is not None:
        _check_cron(cron)
    if every is not None:
        every = _positive(every, "every")
    if catch_up not in CATCH_UP_POLICIES:
        raise InvalidInput(f"catch_up must be one of {', '.join(CATCH_UP_POLICIES)}: {catch_up!r}")
    _zone(timezone)
    grace = _positive(grace, "grace")
    anchor = start_at.timestamp() if isinstance(start_at, datetime) else start_at or 0.0
    if isinstance(anchor, bool) or not isinstance(anchor, int | float) or not math.isfinite(anchor):
        raise InvalidInput(f"start_at must be a datetime or POSIX seconds: {start_at!r}")
    return ScheduleSpec(
        cron=cron,
        every=every,
        timezone=timezone,
        catch_up=catch_up,  # type: ignore[arg-type]  # checked above
        grace=grace,
        start_at=float(anchor),
        input=input,
    )


def check_schedule_id(schedule_id: str) -> str:
    if not isinstance(schedule_id, str) or not schedule_id or len(schedule_id) > MAX_SCHEDULE_ID:
        raise InvalidInput(
            f"schedule_id must be a non-empty string of at most {MAX_SCHEDULE_ID} characters: "
            f"{schedule_id!r}"
        )
    if "@" in schedule_id:
        raise InvalidInput(f"schedule_id must not contain '@' (it ends at it): {schedule_id!r}")
    return schedule_id


def _check_cron(expression: str) -> None:
    if not isinstance(expression, str) or len(expression.split()) not in (5, 6):
        raise InvalidInput(
            f"cron must be an expression of 5 fields (minute hour day month weekday) or 6 "
            f"(with seconds last): {expression!r}"
        )
    try:
        croniter(expression, datetime.fromtimestamp(0, UTC)).get_next(float)
    except (CroniterError, ValueError, KeyError) as exc:
        raise InvalidInput(f"invalid cron expression {expression!r}: {exc}") from exc


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{name} must be a number of seconds: {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidInput(f"{name} must be a positive, finite number of seconds: {value!r}")
    return float(value)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise InvalidInput(f"unknown time zone {name!r} (use an IANA name)") from exc


# -- ticks ----------------------------------------------------------------------------------------


def next_tick(spec: ScheduleSpec, after: float) -> float:
    """The first tick strictly after ``after``; an interval's first tick is ``start_at``."""
    if spec.every is not None:
        k = max(math.floor((after - spec.start_at) / spec.every) + 1, 0)
        tick = spec.start_at + k * spec.every
        while tick <= after:  # float rounding
            k += 1
            tick = spec.start_at + k * spec.every
        return tick
    zone = _zone(spec.timezone)
    tick = float(_cron(spec).get_next(float, start_time=datetime.fromtimestamp(after, zone)))
    while _repeated(spec, tick, zone):
        tick = float(_cron(spec).get_next(float, start_time=datetime.fromtimestamp(tick, zone)))
    return tick


def latest_tick(spec: ScheduleSpec, at: float) -> float:
    """The last tick at or before ``at``."""
    if spec.every is not None:
        k = math.floor((at - spec.start_at) / spec.every)
        tick = spec.start_at + k * spec.every
        while tick > at:  # float rounding
            k -= 1
            tick = spec.start_at + k * spec.every
        return tick
    # cron ticks fall on whole seconds; get_prev answers strictly before its start
    zone = _zone(spec.timezone)
    start = datetime.fromtimestamp(math.floor(at) + 1, zone)
    tick = float(_cron(spec).get_prev(float, start_time=start))
    while _repeated(spec, tick, zone):
        tick = float(_cron(spec).get_prev(float, start_time=datetime.fromtimestamp(tick, zone)))
    return tick


def _repeated(spec: ScheduleSpec, tick: float, zone: ZoneInfo) -> bool:
    """Whether ``tick`` is the second occurrence of a local time (clocks went back) that a
    job at fixed hours skips, as Debian's cron does: it ran at the first. A job whose hour
    field is ``*`` runs on both (they are an hour apart)."""
    assert spec.cron is not None
    fixed_hours = spec.cron.split()[1] != "*"
    return fixed_hours and datetime.fromtimestamp(tick, zone).fold == 1


def _cron(spec: ScheduleSpec) -> croniter:
    """A croniter of the spec's expression, parsed once (a copy: croniter keeps a cursor)."""
    assert spec.cron is not None
    return copy.copy(_parsed(spec.cron))


@lru_cache(maxsize=256)
def _parsed(expression: str) -> croniter:
    return croniter(expression, 0.0)


def upcoming(schedule: Schedule, count: int) -> list[float]:
    """The next ``count`` fire times of a schedule (empty while paused)."""
    if schedule.next_fire_at is None:
        return []
    times = [schedule.next_fire_at]
    while len(times) < count:
        times.append(next_tick(schedule.spec, times[-1]))
    return times


def plan_firing(schedule: Schedule, now: float, *, limit: int = 100) -> Firing:
    """The ticks to start now for a due schedule (``next_fire_at <= now``) under its catch-up
    policy, and when it is next due."""
    spec = schedule.spec
    first = schedule.next_fire_at
    assert first is not None and first <= now, "plan_firing is for a due schedule"
    if spec.catch_up == "all":
        ticks = [first]
        while len(ticks) < limit and (tick := next_tick(spec, ticks[-1])) <= now:
            ticks.append(tick)
        return Firing(ticks=ticks, next_fire_at=next_tick(spec, ticks[-1]))
    following = next_tick(spec, first)
    latest = first
    if following <= now:  # ticks were missed: jump to the latest one due
        latest = latest_tick(spec, now)
        following = next_tick(spec, latest)
    on_time = spec.catch_up == "last" or now - latest <= spec.grace
    return Firing(ticks=[latest] if on_time else [], next_fire_at=following)


# -- state changes --------------------------------------------------------------------------------


def new_schedule(
    schedule_id: str, workflow: str, spec: ScheduleSpec, now: float, *, paused: bool = False
) -> Schedule:
    """A schedule created at ``now``: its first tick is the first one after ``now``."""
    return Schedule(
        schedule_id=check_schedule_id(schedule_id),
        workflow=workflow,
        spec=spec,
        paused=paused,
        next_fire_at=None if paused else next_tick(spec, now),
        created_at=now,
        updated_at=now,
    )


def merge_schedule(stored: Schedule, new: Schedule) -> Schedule | None:
    """Saving ``new`` over ``stored`` (same id): None when nothing changes (a process that
    declares the same schedule at every start), else the stored schedule with the new
    workflow and spec, counting from ``new``'s time; pausing is kept as stored."""
    if stored.workflow == new.workflow and stored.spec == new.spec:
        return None
    return msgspec.structs.replace(
        stored,
        workflow=new.workflow,
        spec=new.spec,
        next_fire_at=None if stored.paused else new.next_fire_at,
        updated_at=new.updated_at,
    )


def set_paused(schedule: Schedule, paused: bool, now: float) -> Schedule:
    """Pause (no ticks fire), or resume: counting from ``now``, ticks missed while paused are
    not caught up."""
    if schedule.paused == paused:
        return schedule
    return msgspec.structs.replace(
        schedule,
        paused=paused,
        next_fire_at=None if paused else next_tick(schedule.spec, now),
        updated_at=now,
    )


def fired(schedule: Schedule, firing: Firing, now: float) -> Schedule:
    """The schedule after ``firing``."""
    last = firing.ticks[-1] if firing.ticks else schedule.last_tick
    return msgspec.structs.replace(
        schedule, next_fire_at=firing.next_fire_at, last_tick=last, updated_at=now
    )


# -- instances ------------------------------------------------------------------------------------


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(round(at, 6), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def tick_instance_id(schedule_id: str, tick: float) -> str:
    """The id of the instance a tick starts: ``"{schedule_id}@2026-01-01T00:05:00.000000Z"``."""
    return f"{schedule_id}@{_stamp(tick)}"


def manual_instance_id(schedule_id: str, now: float) -> str:
    """The id of an instance started by triggering a schedule by hand at ``now``."""
    return f"{schedule_id}@manual-{_stamp(now)}"


def tick_of(instance_id: str) -> float | None:
    """The tick an instance of a schedule was started for (None: not a tick's instance)."""
    _, at, stamp = instance_id.rpartition("@")
    if not at or stamp.startswith("manual-"):
        return None
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def started_event(schedule: Schedule, instance_id: str, now: float) -> WorkflowStarted:
    """The first history event of an instance the schedule starts."""
    return WorkflowStarted(
        workflow=schedule.workflow, instance_id=instance_id, input=schedule.spec.input, at=now
    )


__all__ = [
    "CATCH_UP_POLICIES",
    "SPEC_OPTIONS",
    "CatchUp",
    "Firing",
    "Schedule",
    "ScheduleOptions",
    "ScheduleSpec",
    "build_schedule",
    "check_schedule_id",
    "fired",
    "latest_tick",
    "make_spec",
    "manual_instance_id",
    "merge_schedule",
    "new_schedule",
    "next_tick",
    "plan_firing",
    "set_paused",
    "spec_of",
    "started_event",
    "tick_instance_id",
    "tick_of",
    "upcoming",
]

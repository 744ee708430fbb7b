"""What the CLI and the viewer show: an instance's history as readable rows, durations, ages.

No web framework here, so ``replaykit show`` imports it without Starlette installed.

>>> rows = timeline(app.history("order-42"))
>>> [(r.step, r.kind, r.name, r.duration) for r in rows]

A row's ``duration`` is the time since the previous history event (events stored without a
timestamp, ``at == 0``, are shown at the previous event's time). A worker issues a command right
after it records the event before it, so for a sequential workflow this is exactly how long the
activity ran (one attempt), the timer slept or the wait waited. Members of ``All``/``Any`` are
issued together, so there it is the time since the previous member finished.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from ...core.history import (
    ActivityCompleted,
    ActivityFailed,
    CancelRequested,
    ChildCompleted,
    ChildFailed,
    CompensationCompleted,
    CompensationFailed,
    EffectApplied,
    ErrorInfo,
    EventReceived,
    EventTimedOut,
    HistoryEvent,
    MessageReceived,
    ReceiveTimedOut,
    RetryTimerFired,
    TimerFired,
    ValueRecorded,
    WorkflowStarted,
)
from ...storage import InstanceRecord

#: Event kind -> category, used for colours in the viewer and the CLI.
CATEGORIES: dict[type[Any], str] = {
    WorkflowStarted: "start",
    CancelRequested: "cancel",
    ActivityCompleted: "activity",
    ActivityFailed: "error",
    RetryTimerFired: "retry",
    TimerFired: "timer",
    EventReceived: "wait",
    EventTimedOut: "error",
    MessageReceived: "wait",
    ReceiveTimedOut: "error",
    ChildCompleted: "child",
    ChildFailed: "error",
    ValueRecorded: "value",
    EffectApplied: "effect",
    CompensationCompleted: "compensation",
    CompensationFailed: "error",
}

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


class Row(msgspec.Struct, kw_only=True):
    """One history event, ready to print."""

    position: int
    step: int | None
    kind: str
    category: str
    name: str
    at: float
    offset: float  # seconds since the run started
    duration: float | None
    attempt: int | None
    detail: str
    error: ErrorInfo | None = None


def parse_duration(text: str) -> float:
    """``"90s"``, ``"15m"``, ``"1h30m"``, ``"2d"``, ``"1w"`` -> seconds; ValueError otherwise."""
    cleaned = text.strip().lower().replace(" ", "")
    if cleaned and _DURATION.sub("", cleaned) == "":
        return sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(cleaned))
    raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 1h30m, 2d, 1w)")


def when(ts: float | None) -> str:
    """A POSIX timestamp as ``YYYY-MM-DD HH:MM:SS`` (UTC), ``-`` for none."""
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def human_seconds(seconds: float | None) -> str:
    """``0.0123`` -> ``12.3 ms``, ``75`` -> ``1m 15s``, ``90000`` -> ``1d 1h``."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s"


def age(ts: float | None, now: float | None = None) -> str:
    """How long ago ``ts`` was, e.g. ``3m 2s``."""
    if not ts:
        return "-"
    return human_seconds(max(0.0, (now if now is not None else time.time()) - ts))


def compact(value: Any, limit: int = 120) -> str:
    """A value as short JSON for one table cell."""
    text = json.dumps(msgspec.to_builtins(value), default=str, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _detail(event: HistoryEvent) -> tuple[str, ErrorInfo | None]:
    match event:
        case WorkflowStarted(input=value, run=run, continued_from=prev, forked_from=origin):
            extra = f" (run {run}, continued from {prev})" if prev else ""
            if origin is not None:
                extra += f" (forked from {origin} at step {event.forked_step})"
            if event.deadline is not None:
                extra += f" (deadline {when(event.deadline)} UTC)"
            return f"input {compact(value)}{extra}", None
        case CancelRequested(reason=reason, timed_out=True):
            return f"timed out: {reason or '-'}", None
        case CancelRequested(reason=reason):
            return f"reason: {reason or '-'}", None
        case ActivityFailed(error=err) | ChildFailed(error=err) | CompensationFailed(error=err):
            return f"{err.short_type}: {err.message}", err
        case ActivityCompleted(result=value) | ChildCompleted(result=value):
            return compact(value), None
        case CompensationCompleted(of_step=of_step, result=value):
            return f"undid step {of_step}: {compact(value)}", None
        case EventReceived(event=ev):
            return f"{ev.type} {compact(ev.data)}", None
        case MessageReceived(message=msg):
            return f"{msg.channel} {compact(msg.data)}", None
        case ValueRecorded(kind=kind, value=value) | EffectApplied(kind=kind, value=value):
            return f"{kind} {compact(value)}", None
        case EventTimedOut() | ReceiveTimedOut():
            return "timed out", None
    return "", None


def timeline(events: Sequence[HistoryEvent]) -> list[Row]:
    """Readable rows for a run's history events (see the module docstring for ``duration``)."""
    rows: list[Row] = []
    start = events[0].at if events else 0.0
    previous: float | None = None
    for position, event in enumerate(events):
        detail, error = _detail(event)
        step = getattr(event, "step", None)
        at = event.at if event.at > 0 else previous  # an event without a timestamp
        rows.append(
            Row(
                position=position,
                step=step,
                kind=type(event).__name__,
                category=CATEGORIES.get(type(event), "other"),
                name=getattr(event, "name", "") or getattr(event, "workflow", ""),
                at=at or 0.0,
                offset=(at or start) - start,
                duration=None if at is None or previous is None or step is None else at - previous,
                attempt=getattr(event, "attempt", None),
                detail=detail,
                error=error,
            )
        )
        previous = at
    return rows


def error_of(record: InstanceRecord) -> ErrorInfo | None:
    """The instance's final error (failed or cancelled), if any."""
    if not isinstance(record.error, dict):
        return None
    try:
        return msgspec.convert(record.error, ErrorInfo)
    except msgspec.ValidationError:
        return ErrorInfo(type="", message=compact(record.error, 500))


__all__ = [
    "CATEGORIES",
    "Row",
    "age",
    "compact",
    "error_of",
    "human_seconds",
    "parse_duration",
    "timeline",
    "when",
]

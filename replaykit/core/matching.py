"""Replay checks: does the event recorded at a step fit the command the code yielded there?"""

from __future__ import annotations

from types import CodeType

from .commands import (
    ActivityCall,
    Command,
    Compensate,
    Now,
    PatchMarker,
    Random,
    Receive,
    SideEffect,
    Sleep,
    SleepUntil,
    StartChild,
    Uuid,
    WaitEvent,
)
from .errors import NonDeterminismError
from .history import (
    ActivityCompleted,
    ActivityFailed,
    ChildCompleted,
    ChildFailed,
    CompensationCompleted,
    CompensationFailed,
    EffectApplied,
    EventReceived,
    EventTimedOut,
    MessageReceived,
    ReceiveTimedOut,
    RetryTimerFired,
    StepEvent,
    TimerFired,
    ValueRecorded,
)

Location = tuple[str, int]

# Which command kinds each step event may resolve.
_RESOLVES: dict[type[StepEvent], tuple[type[Command], ...]] = {
    ActivityCompleted: (ActivityCall,),
    ActivityFailed: (ActivityCall,),
    RetryTimerFired: (ActivityCall, Compensate),
    TimerFired: (Sleep, SleepUntil),
    EventReceived: (WaitEvent,),
    EventTimedOut: (WaitEvent,),
    MessageReceived: (Receive,),
    ReceiveTimedOut: (Receive,),
    ChildCompleted: (StartChild,),
    ChildFailed: (StartChild,),
    CompensationCompleted: (Compensate,),
    CompensationFailed: (Compensate,),
}
_VALUE_KINDS = {"Now": Now, "Uuid": Uuid, "Random": Random, "SideEffect": SideEffect}
#: ``ValueRecorded.kind`` of the marker a taken :class:`~replaykit.core.commands.Patched` records
PATCH_MARKER = "Patched"


def is_marker_for(event: object, step: int, patch_id: str) -> bool:
    """Whether ``event`` is the marker of patch ``patch_id`` at ``step``."""
    return (
        isinstance(event, ValueRecorded)
        and event.kind == PATCH_MARKER
        and event.step == step
        and event.name == patch_id
    )


def location_of(code: CodeType | None, line: int) -> Location:
    """A (file, line) pair for messages."""
    return (code.co_filename if code else "<unknown>", line)


def format_location(loc: Location | None) -> str:
    return f"{loc[0]}:{loc[1]}" if loc else "<unknown>"


def recorded_description(event: StepEvent) -> str:
    """How history describes the command it recorded at the event's step."""
    kind = getattr(event, "kind", None) or {
        ActivityCompleted: "ActivityCall",
        ActivityFailed: "ActivityCall",
        RetryTimerFired: "ActivityCall",
        TimerFired: "Sleep",
        EventReceived: "WaitEvent",
        EventTimedOut: "WaitEvent",
        MessageReceived: "Receive",
        ReceiveTimedOut: "Receive",
        ChildCompleted: "StartChild",
        ChildFailed: "StartChild",
        CompensationCompleted: "Compensate",
        CompensationFailed: "Compensate",
    }.get(type(event), type(event).__name__)
    return f"{kind} {event.name!r}" if event.name else kind


def fits(event: StepEvent, command: Command, fp: str | None = None) -> bool:
    """Whether ``event`` can be the outcome of ``command`` (kind, name and argument fingerprint).

    ``fp`` is the command's argument fingerprint when the caller already has it (saves hashing
    the arguments again on every replayed step).
    """
    if isinstance(event, ValueRecorded | EffectApplied):
        expected = _VALUE_KINDS.get(event.kind)
        if isinstance(event, ValueRecorded):
            if event.kind == PATCH_MARKER:  # the marker of a Patched, also taken by DeprecatePatch
                return isinstance(command, PatchMarker) and event.name == command.id
            if expected is None or type(command) is not expected:
                return False
        elif type(command).__name__ != event.kind:
            return False
    else:
        allowed = _RESOLVES.get(type(event), ())
        if not isinstance(command, allowed):
            return False
    target = command.call if isinstance(command, Compensate) else command
    if isinstance(target, ActivityCall):
        if event.name != target.name:
            return False
        return not event.fp or event.fp == (fp or target.args_fingerprint())
    return event.name == target.identity()[1]


def mismatch(
    *,
    instance_id: str,
    step: int,
    event: StepEvent,
    command: Command | None,
    location: Location | None,
    note: str = "",
) -> NonDeterminismError:
    """Build the error for a recorded event that does not fit the code (Restate-style message)."""
    expected = recorded_description(event)
    if command is None:
        actual = "nothing"
        msg = (
            f"instance {instance_id!r} step {step}: history has {expected}, "
            f"but the code never yielded step {step}{note}"
        )
    else:
        actual = command.describe()
        if isinstance(command, ActivityCall) and command.name == event.name:
            actual += " with other arguments"
        msg = (
            f"instance {instance_id!r} step {step}: history has {expected}, "
            f"code yielded {actual} at {format_location(location)}{note}"
        )
    msg += (
        ". Likely cause: the workflow code changed while this instance was running "
        "(reordered, added or removed a yield, or changed an activity's arguments); "
        "put the change behind `if (yield Patched('<id>')):` so that instances from before it "
        "keep the old path (docs/versioning.md), or keep the old order of yields."
    )
    return NonDeterminismError(
        msg,
        instance_id=instance_id,
        step=step,
        expected=expected,
        actual=actual,
        location=format_location(location),
    )

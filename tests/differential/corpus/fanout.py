"""All and Any over activities, timers, events and messages: all-settled with failures, a
failing member raised after every member ended, Any won by a timer or an event (losers
cancelled, or kept with cancel_losers=False)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from replaykit import (
    All,
    AnyOf,
    EventTimeout,
    Receive,
    Sleep,
    Subscribe,
    TerminalError,
    WaitEvent,
    activity,
    workflow,
)

from ..harness import Advance, Scenario, SendEvent, SendMessage, StartWorkflow


@activity(name="d_square")
def d_square(ctx: Any, n: int) -> int:
    if n < 0:
        raise TerminalError(f"negative: {n}")
    return n * n


@workflow(name="d_all")
def d_all(ctx: Any, numbers: list[int]) -> Generator[Any, Any, dict[str, Any]]:
    settled = yield All([d_square(n) for n in numbers], settled=True)
    shown = [f"error: {v}" if isinstance(v, Exception) else v for v in settled]
    mixed = yield All([d_square(2), Sleep(5), WaitEvent("d.go")])
    try:
        yield All([d_square(-1), d_square(3)])
    except Exception as exc:
        return {"settled": shown, "mixed": [mixed[0], mixed[2].data], "raised": str(exc)}
    return {"settled": shown, "mixed": [], "raised": ""}


@workflow(name="d_any")
def d_any(ctx: Any) -> Generator[Any, Any, list[Any]]:
    out: list[Any] = []
    index, _ = yield AnyOf([Sleep(10), WaitEvent("d.fast")])
    out.append(index)
    index, value = yield AnyOf([Sleep(100), WaitEvent("d.fast")])
    out.append([index, value.data])
    yield Subscribe("d-any-ch")
    index, value = yield AnyOf([Receive("d-any-ch"), Sleep(50)], cancel_losers=False)
    out.append([index, None if value is None else value.data])
    try:
        yield AnyOf([WaitEvent("d.never", timeout=3), Sleep(20)])
    except EventTimeout as exc:
        out.append(f"timeout: {type(exc).__name__}")
    return out


SCENARIOS = [
    Scenario(
        "all_settled_mixed_members_and_raised_failure",
        workflows=(d_all,),
        activities=(d_square,),
        script=(
            StartWorkflow("d_all", "all-1", [1, -2, 3]),
            SendEvent("d.go", {"when": "early"}, instance_id="all-1"),
            Advance(5),
        ),
        expect={"all-1": "completed"},
    ),
    Scenario(
        "any_won_by_timer_event_message_and_timeout",
        workflows=(d_any,),
        script=(
            StartWorkflow("d_any", "any-1"),
            Advance(11),
            SendEvent("d.fast", {"n": 1}, instance_id="any-1"),
            SendMessage("any-1", "d-any-ch", {"direct": True}),
            Advance(60),
        ),
        expect={"any-1": "completed"},
    ),
]

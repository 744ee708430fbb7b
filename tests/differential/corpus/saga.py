"""Saga compensation: in reverse order when the workflow fails, and when it is cancelled while
it waits; a compensation that fails and is retried; compensations of a child."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from replaykit import RetryPolicy, Sleep, TerminalError, WaitEvent, activity, workflow

from ..harness import Advance, Cancel, Scenario, SendEvent, StartWorkflow


@activity(name="d_release", retry=RetryPolicy(max_attempts=3, initial_interval=1.0))
def d_release(ctx: Any, item: str) -> str:
    if item == "shaky" and ctx.attempt < 2:
        raise ConnectionError("release failed once")
    return f"released {item} (reserved as {ctx.compensating_result})"


@activity(name="d_reserve", compensate=d_release)
def d_reserve(ctx: Any, item: str) -> str:
    return f"rsv-{item}"


@activity(name="d_fail_hard")
def d_fail_hard(ctx: Any, why: str) -> None:
    raise TerminalError(why)


@workflow(name="d_saga_fail")
def d_saga_fail(ctx: Any) -> Generator[Any, Any, None]:
    yield d_reserve("book")
    yield d_reserve("shaky")
    yield d_reserve("pen")
    yield d_fail_hard("payment refused")


@workflow(name="d_saga_cancel")
def d_saga_cancel(ctx: Any) -> Generator[Any, Any, str]:
    yield d_reserve("seat")
    yield d_reserve("meal")
    yield Sleep(30)
    got = yield WaitEvent("d.confirm")
    return str(got.data)


SCENARIOS = [
    Scenario(
        "compensation_on_failure",
        workflows=(d_saga_fail,),
        activities=(d_reserve, d_fail_hard),
        script=(StartWorkflow("d_saga_fail", "saga-fail"), Advance(10)),
        expect={"saga-fail": "failed"},
    ),
    Scenario(
        "compensation_on_cancel_while_waiting_for_an_event",
        workflows=(d_saga_cancel,),
        activities=(d_reserve,),
        script=(
            StartWorkflow("d_saga_cancel", "saga-cancel"),
            Advance(40),
            Cancel("saga-cancel", "customer changed their mind"),
            SendEvent("d.confirm", {"late": True}, instance_id="saga-cancel"),
        ),
        expect={"saga-cancel": "cancelled"},
    ),
    Scenario(
        "compensation_on_cancel_while_sleeping",
        workflows=(d_saga_cancel,),
        activities=(d_reserve,),
        script=(
            StartWorkflow("d_saga_cancel", "saga-sleep"),
            Advance(10),
            Cancel("saga-sleep"),
            Advance(60),
        ),
        expect={"saga-sleep": "cancelled"},
    ),
]

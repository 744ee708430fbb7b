"""Activities: results, retries with durable backoff, terminal and non-retryable errors,
async activities, outbox writes, errors caught by type in the workflow."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from replaykit import ActivityError, RetryPolicy, TerminalError, activity, workflow

from ..harness import Advance, Scenario, StartWorkflow


class Declined(Exception):
    """A business error, caught by type in the workflow."""


@activity(name="d_add")
def d_add(ctx: Any, a: int, b: int) -> int:
    return a + b


@activity(name="d_flaky", retry=RetryPolicy(max_attempts=4, initial_interval=2.0))
def d_flaky(ctx: Any, succeed_on: int) -> dict[str, int]:
    if ctx.attempt < succeed_on:
        raise ConnectionError(f"attempt {ctx.attempt} failed")
    return {"attempt": ctx.attempt}


@activity(name="d_terminal", retry=RetryPolicy(max_attempts=5))
def d_terminal(ctx: Any, why: str) -> None:
    raise TerminalError(why)


@activity(name="d_declined", retry=RetryPolicy(max_attempts=3, non_retryable=("Declined",)))
def d_declined(ctx: Any, amount: float) -> None:
    raise Declined(f"{amount} declined")


@activity(name="d_async")
async def d_async(ctx: Any, text: str) -> str:
    return text.upper()


@activity(name="d_emit")
def d_emit(ctx: Any, kind: str, n: int) -> int:
    ctx.outbox.send({"type": f"d.{kind}", "data": {"n": n}, "subject": kind})
    return n


@workflow(name="d_chain")
def d_chain(ctx: Any, n: int) -> Generator[Any, Any, dict[str, Any]]:
    total = yield d_add(n, 1)
    total = yield d_add(total, 2)
    shout = yield d_async("done")
    sent = yield d_emit("chained", total)
    return {"total": total, "shout": shout, "sent": sent}


@workflow(name="d_retries")
def d_retries(ctx: Any, succeed_on: int) -> Generator[Any, Any, Any]:
    result = yield d_flaky(succeed_on)
    return result


@workflow(name="d_errors")
def d_errors(ctx: Any) -> Generator[Any, Any, list[str]]:
    caught = []
    try:
        yield d_declined(250.0)
    except Declined as exc:
        caught.append(f"declined: {exc}")
    try:
        yield d_terminal("no point retrying")
    except ActivityError as exc:
        caught.append(f"terminal: {exc.type_name}")
    yield d_terminal("this one ends the workflow")
    return caught


SCENARIOS = [
    Scenario(
        "activity_chain_and_outbox",
        workflows=(d_chain,),
        activities=(d_add, d_async, d_emit),
        script=(StartWorkflow("d_chain", "chain-1", 5),),
        expect={"chain-1": "completed"},
    ),
    Scenario(
        "retries_until_success",
        workflows=(d_retries,),
        activities=(d_flaky,),
        script=(StartWorkflow("d_retries", "retry-ok", 3), Advance(1), Advance(10)),
        expect={"retry-ok": "completed"},
    ),
    Scenario(
        "retries_exhausted",
        workflows=(d_retries,),
        activities=(d_flaky,),
        script=(StartWorkflow("d_retries", "retry-out", 9), Advance(100)),
        expect={"retry-out": "failed"},
    ),
    Scenario(
        "terminal_and_non_retryable_errors",
        workflows=(d_errors,),
        activities=(d_declined, d_terminal),
        script=(StartWorkflow("d_errors", "errors-1"), Advance(60)),
        expect={"errors-1": "failed"},
    ),
]

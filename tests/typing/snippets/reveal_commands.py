"""Inferred types of the public API; each ``# R:`` comment is what mypy must reveal there."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, reveal_type

import msgspec

from replaykit import (
    ActivityCall,
    All,
    AnyOf,
    Command,
    Decision,
    Now,
    RetryPolicy,
    Sleep,
    activity,
    workflow,
)


class Receipt(msgspec.Struct):
    amount: float


@activity
def add(ctx: Any, a: int, b: int) -> int:
    return a + b


@activity
async def charge(ctx: Any, amount: float) -> Receipt:
    return Receipt(amount=amount)


@activity(retry=RetryPolicy(max_attempts=5))
def label(ctx: Any, n: int) -> str:
    return str(n)


@workflow
def child(ctx: Any, n: int) -> Generator[Command, Any, float]:
    yield Sleep(1)
    return n / 2


@workflow
def order(ctx: Any, n: int) -> Generator[Command, Any, str]:
    total = yield from add(1, 2)
    reveal_type(total)  # R: int
    receipt = yield from charge(2.5)
    reveal_type(receipt)  # R: Receipt
    text = yield from label(3)
    reveal_type(text)  # R: str
    untyped = yield add(1, 2)
    reveal_type(untyped)  # R: Any
    reveal_type(add(1, 2))  # R: replaykit.core.commands.ActivityCall[int]
    half = yield from child.child(4)
    reveal_type(half)  # R: float
    values = yield from All([add(1, 1), Sleep(1)])
    reveal_type(values)  # R: list[Any]
    first = yield from AnyOf([Sleep(1), Sleep(2)])
    reveal_type(first)  # R: tuple[int, Any]
    now = yield from Now()
    reveal_type(now)  # R: Any
    return text


reveal_type(add)  # R: replaykit.core.definitions.Activity[[*Any, **Any], int]
reveal_type(order)  # R: replaykit.core.definitions.Workflow[Any, str]
reveal_type(Decision().finished)  # R: bool
call: ActivityCall[int] = add(1, 2)

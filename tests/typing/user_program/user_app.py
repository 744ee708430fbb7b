"""A small user program: ``mypy --strict`` must accept it against the *installed* replaykit wheel
(``tests/typing/test_installed_wheel.py``), and reveal the types on the ``# R:`` lines."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, reveal_type

from replaykit import ActivityContext, App, Command, RetryPolicy, Sleep, activity, workflow


@activity(retry=RetryPolicy(max_attempts=3))
def charge(ctx: ActivityContext, order_id: str, amount: float) -> str:
    return f"receipt-{order_id}-{amount}"


@workflow
def order(ctx: Any, order_id: str) -> Generator[Command, Any, str]:
    receipt = yield from charge(order_id, 9.5)
    reveal_type(receipt)  # R: str
    yield Sleep(1)
    return receipt


def main(database: str) -> str:
    with App(database, workflows=[order]) as app:
        handle = app.start_workflow(order, "o1")
        reveal_type(handle)  # R: replaykit.runtime.app.WorkflowHandle[str]
        return handle.result(timeout=30)

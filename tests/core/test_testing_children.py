"""Children in the in-memory environment: default ids across ``Recur``, deadlines and
parent-close policies (the same rules as tests/runtime/test_children.py on the databases)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from replaykit import Command, Recur, Sleep, workflow
from replaykit.testing import WorkflowEnvironment

DAY = 86400.0


@workflow(name="tc_double")
def tc_double(ctx: Any, n: int) -> Generator[Command, Any, int]:
    yield Sleep(DAY)
    return n * 2


@workflow(name="tc_recurring_parent")
def tc_recurring_parent(ctx: Any, total: int) -> Generator[Command, Any, int]:
    doubled = yield from tc_double.child(ctx.run)
    if ctx.run < 3:
        yield Recur(total + doubled)
    return total + doubled


def test_a_recurring_parent_gets_fresh_default_child_ids_in_every_run() -> None:
    env = WorkflowEnvironment()
    assert env.run(tc_recurring_parent, 0, instance_id="rp") == 2 + 4 + 6
    assert sorted(env.runs) == ["rp", "rp/1", "rp@2/1", "rp@3/1"]
    assert env.runs["rp@2/1"].result() == 4

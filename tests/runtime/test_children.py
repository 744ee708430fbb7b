"""Children on each adapter: default ids across ``Recur``, deadlines, parent-close policies."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from replaykit import Command, Recur, Sleep, workflow
from replaykit.runtime.app import App


@workflow(name="ch_double")
def ch_double(ctx: Any, n: int) -> Generator[Command, Any, int]:
    yield Sleep(0.01)
    return n * 2


@workflow(name="ch_recurring_parent")
def ch_recurring_parent(ctx: Any, total: int) -> Generator[Command, Any, int]:
    doubled = yield from ch_double.child(ctx.run)
    if ctx.run < 3:
        yield Recur(total + doubled)
    return total + doubled


def test_a_recurring_parent_gets_fresh_default_child_ids_in_every_run(
    make_app: Callable[..., App],
) -> None:
    with make_app(workflows=[ch_recurring_parent, ch_double]) as app:
        handle = app.start_workflow(ch_recurring_parent, 0, instance_id="rp")
        assert handle.result(timeout=20) == 2 + 4 + 6
        assert app.status("rp/1").output == 2  # run 1 keeps the ids of existing histories
        assert app.status("rp@2/1").output == 4
        assert app.status("rp@3/1").parent_id == "rp"

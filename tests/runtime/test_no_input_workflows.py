"""An input given to a workflow that takes none (``fn(ctx)``) is refused with InvalidInput
(argument ``"input"``) before anything is stored, never silently dropped: wherever a workflow
is started, on every database. None still means "no input". (The same in replaykit.testing:
tests/core/test_no_input_workflows.py; at the CloudEvents intake and MCP: tests/integrations.)"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest

from replaykit import ChildWorkflowError, EventData, InvalidInput, Recur, workflow
from replaykit.runtime.app import App

from .test_input_validation import refused, stored_rows


@workflow(name="ni_tick")
def ni_tick(ctx: Any) -> Generator[Any, Any, str]:
    return "tick"
    yield  # pragma: no cover - makes this a generator


@workflow(name="ni_parent")
def ni_parent(ctx: Any, given: Any) -> Generator[Any, Any, str]:
    try:
        yield ni_tick.child(given)
    except ChildWorkflowError as exc:
        return f"{exc.type_name}: {exc}"
    return "started"


@workflow(name="ni_recurring")
def ni_recurring(ctx: Any) -> Generator[Any, Any, str]:
    try:
        yield Recur({"n": 1})
    except InvalidInput as exc:
        return f"refused ({exc.argument}): {exc}"
    return "unreachable"  # pragma: no cover


def _send_events(app: App, value: Any) -> Any:
    event = EventData(type="ni.go", source="/t", id="e1")
    return app.send_events([event], starts=[[(ni_tick, value, "s1")]])


STARTS: dict[str, Callable[[App, Any], Any]] = {
    "start_workflow": lambda app, v: app.start_workflow(ni_tick, v, instance_id="s1"),
    "start_workflow-by-name": lambda app, v: app.start_workflow("ni_tick", v, instance_id="s1"),
    "enqueue": lambda app, v: app.enqueue("ni_q", ni_tick, v, instance_id="s1"),
    "start_workflow-queue": lambda app, v: app.start_workflow(
        ni_tick, v, instance_id="s1", queue="ni_q"
    ),
    "send_events-starts": _send_events,
    "schedule": lambda app, v: app.schedule(ni_tick, v, every=60),
}


@pytest.mark.parametrize("value", [{"x": 1}, 0, "", False], ids=["dict", "zero", "empty", "false"])
@pytest.mark.parametrize("how", sorted(STARTS))
def test_an_input_for_a_workflow_that_takes_none_is_refused_and_stores_nothing(
    make_app: Callable[..., App], how: str, value: Any
) -> None:
    app = make_app(workflows=[ni_tick], workers=False)
    app.queue("ni_q")
    before = stored_rows(app)
    error = refused(lambda: STARTS[how](app, value), "input")
    assert "'ni_tick' takes no input" in str(error)
    assert stored_rows(app) == before
    assert app.list_schedules() == []
    assert app.get_instance("s1") is None


def test_none_still_starts_a_workflow_that_takes_no_input(make_app: Callable[..., App]) -> None:
    with make_app(workflows=[ni_tick]) as app:
        assert app.start_workflow(ni_tick, instance_id="a").result(timeout=10) == "tick"
        assert app.start_workflow(ni_tick, None, instance_id="b").result(timeout=10) == "tick"
        assert app.schedule(ni_tick, None, every=60).workflow == "ni_tick"


def test_a_child_given_an_input_it_does_not_take_fails_the_parents_step(
    make_app: Callable[..., App],
) -> None:
    with make_app(workflows=[ni_parent, ni_tick]) as app:
        result = app.start_workflow(ni_parent, {"x": 1}, instance_id="p").result(timeout=10)
        assert result.startswith("replaykit.core.errors.InvalidInput: ")
        assert "'ni_tick' takes no input" in result
        assert app.get_instance("p/1") is None  # the child was never stored
        fine = app.start_workflow(ni_parent, None, instance_id="q").result(timeout=10)
        assert fine == "started"


def test_recur_with_an_input_the_workflow_does_not_take_raises_at_the_yield(
    make_app: Callable[..., App],
) -> None:
    with make_app(workflows=[ni_recurring]) as app:
        result = app.start_workflow(ni_recurring, instance_id="r").result(timeout=10)
        assert result.startswith("refused (input): workflow 'ni_recurring' takes no input")
        assert app.status("r").run == 1  # no second run with the input dropped

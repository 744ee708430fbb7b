"""A run of the test environment reports the status ``App.status(id).status`` reports for the
same instance on every database: ``waiting`` while parked, then the final status."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any

from replaykit import Sleep, WaitEvent, activity, workflow
from replaykit.core.commands import Command
from replaykit.core.definitions import Registry
from replaykit.runtime.app import App
from replaykit.testing import WorkflowEnvironment


@activity(name="sp_note")
def sp_note(ctx: Any, text: str) -> str:
    return text


@workflow(name="sp_parked")
def sp_parked(ctx: Any) -> Generator[Command, Any, Any]:
    noted = yield sp_note("reserved")
    paid = yield WaitEvent("sp.paid")
    yield Sleep(3600)
    return [noted, paid.data]


def _wait_for(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 20
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_parked_run_is_waiting_in_memory_as_on_the_database(
    make_app: Callable[..., App], registry: Registry
) -> None:
    registry.add_workflow(sp_parked)
    app = make_app(workflows=[sp_parked])
    app.start()
    app.start_workflow(sp_parked, instance_id="sp-1")
    _wait_for(lambda: app.status("sp-1").status == "waiting")
    app.send_event("sp.paid", {"by": "visa"}, instance_id="sp-1")
    _wait_for(lambda: len(app.history("sp-1")) == 3 and app.status("sp-1").status == "waiting")
    on_database = app.status("sp-1").status

    env = WorkflowEnvironment()
    run = env.start(sp_parked, instance_id="sp-1")
    assert run.status == "waiting"  # parked on the event
    run.send_event("sp.paid", {"by": "visa"})
    assert run.status == on_database == "waiting"  # parked on the timer
    env.advance(3600)
    assert run.status == "completed"
    assert run.result() == ["reserved", {"by": "visa"}]

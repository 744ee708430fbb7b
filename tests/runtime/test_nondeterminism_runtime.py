"""A deployed code change that breaks replay: the instance is held, not corrupted or hot-looped."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from typing import Any

import pytest

from replaykit import Sleep, WaitEvent, activity
from replaykit.core.definitions import Workflow
from replaykit.runtime.app import App


@activity
def step_a(ctx: Any) -> str:
    return "a"


def original(ctx: Any) -> Generator[Any, Any, str]:
    yield step_a()
    yield WaitEvent("go")
    return "done"


def changed(ctx: Any) -> Generator[Any, Any, str]:
    yield Sleep(1)  # a new first step: replay of the old history no longer fits
    yield step_a()
    yield WaitEvent("go")
    return "done"


def test_broken_replay_keeps_the_instance_and_logs_the_mismatch(
    make_app: Callable[..., App], caplog: pytest.LogCaptureFixture
) -> None:
    with make_app() as app:
        app.start_workflow(Workflow(original, name="flow"), instance_id="nd-1")
        deadline = time.monotonic() + 10
        while app.status("nd-1").status != "waiting":
            assert time.monotonic() < deadline
            time.sleep(0.01)
    history_before = None
    with (
        caplog.at_level(logging.ERROR, logger="replaykit.worker"),
        make_app(workflows=[Workflow(changed, name="flow")], lease_seconds=30) as app,
    ):
        history_before = app.history("nd-1")
        app.send_event("go", instance_id="nd-1")
        deadline = time.monotonic() + 10
        while "NonDeterminismError" not in caplog.text:
            assert time.monotonic() < deadline, "the mismatch was never reported"
            time.sleep(0.02)
        time.sleep(0.3)
        record = app.status("nd-1")
        assert record.status == "running" and record.lease_owner is not None
        assert app.history("nd-1") == history_before
    assert "step 1: history has ActivityCall 'step_a', code yielded Sleep" in caplog.text
    assert caplog.text.count("cannot run") == 1, "the broken instance was retried in a hot loop"

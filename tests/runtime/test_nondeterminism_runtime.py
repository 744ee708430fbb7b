"""A deployed code change that breaks replay: the instance is ``blocked`` (never corrupted or
hot-looped), the mismatch shows where users look (status, result(), a hook), and once a fix is
deployed the instance carries on by itself."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from typing import Any

import pytest

from replaykit import NonDeterminismError, Sleep, WaitEvent, activity
from replaykit.core.definitions import Registry, Workflow
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


class Blocked:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, BaseException]] = []

    def workflow_blocked(self, instance_id: str, workflow: str, error: BaseException) -> None:
        self.seen.append((instance_id, workflow, error))


def wait_for(app: App, instance_id: str, status: str) -> None:
    deadline = time.monotonic() + 15
    while app.status(instance_id).status != status:
        assert time.monotonic() < deadline, f"{instance_id} never became {status}"
        time.sleep(0.01)


def waiting_original(make_app: Callable[..., App], instance_id: str) -> None:
    with make_app() as app:
        app.start_workflow(Workflow(original, name="flow"), instance_id=instance_id)
        wait_for(app, instance_id, "waiting")


def test_a_broken_replay_blocks_the_instance_and_result_raises_at_once(
    make_app: Callable[..., App], caplog: pytest.LogCaptureFixture
) -> None:
    waiting_original(make_app, "nd-1")
    hook = Blocked()
    with (
        caplog.at_level(logging.ERROR, logger="replaykit.worker"),
        make_app(workflows=[Workflow(changed, name="flow")], hooks=[hook]) as app,
    ):
        history_before = app.history("nd-1")
        app.send_event("go", instance_id="nd-1")
        began = time.monotonic()
        with pytest.raises(NonDeterminismError) as info:
            app.result("nd-1", timeout=30)
        assert time.monotonic() - began < 10
        assert info.value.step == 1 and "ActivityCall 'step_a'" in info.value.expected
        assert "Sleep" in info.value.actual and "test_nondeterminism_runtime.py" in (
            info.value.location
        )
        record = app.status("nd-1")
        assert record.status == "blocked" and record.lease_owner is None
        assert record.error["type"] == "replaykit.core.errors.NonDeterminismError"
        assert (
            "step 1: history has ActivityCall 'step_a', code yielded Sleep"
            in (record.error["message"])
        )
        assert record.error["step"] == 1 and record.error["location"]
        assert [r.instance_id for r in app.list_instances(status="blocked")] == ["nd-1"]
        time.sleep(0.3)
        assert app.history("nd-1") == history_before
    assert [(i, w) for i, w, _ in hook.seen] == [("nd-1", "flow")]
    assert caplog.text.count("is blocked") == 1, "the broken instance was retried in a hot loop"


def test_a_blocked_instance_carries_on_once_a_fixed_worker_starts(
    make_app: Callable[..., App],
) -> None:
    waiting_original(make_app, "nd-2")
    with make_app(workflows=[Workflow(changed, name="flow")]) as app:
        app.send_event("go", instance_id="nd-2")
        wait_for(app, "nd-2", "blocked")
    with make_app(workflows=[Workflow(original, name="flow")]) as app:  # the fix is deployed
        assert app.result("nd-2", timeout=30) == "done"


def test_a_blocked_instance_is_replayed_again_periodically(
    make_app: Callable[..., App], registry: Registry
) -> None:
    waiting_original(make_app, "nd-3")
    with make_app(workflows=[Workflow(changed, name="flow")], blocked_retry_interval=0.2) as app:
        app.send_event("go", instance_id="nd-3")
        wait_for(app, "nd-3", "blocked")
        registry.add_workflow(Workflow(original, name="flow"))  # e.g. a hot reload of the fix
        wait_for(app, "nd-3", "completed")
        assert app.result("nd-3") == "done"

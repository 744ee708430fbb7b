"""``@activity(timeout=...)`` is enforced: an async attempt is cancelled at its timeout, a sync one
is abandoned (its late result is discarded, never recorded, its heartbeats stop); the attempt
fails with ActivityTimeout, which goes through the retry policy."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

import pytest

from replaykit import (
    ActivityError,
    ActivityTimeout,
    Command,
    RetryPolicy,
    WorkflowFailed,
    activity,
    workflow,
)
from replaykit.core.definitions import Registry
from replaykit.core.history import ActivityCompleted, ActivityFailed
from replaykit.runtime.activities import Outbox, RuntimeActivityContext
from replaykit.runtime.app import App

ONCE = RetryPolicy(max_attempts=1)
SEEN: dict[str, Any] = {}
RELEASE = threading.Event()


@pytest.fixture(autouse=True)
def _reset() -> Generator[None, None, None]:
    SEEN.clear()
    RELEASE.clear()
    yield
    RELEASE.set()  # let an abandoned thread end


@activity(name="at_slow_async", timeout=0.3, retry=ONCE)
async def slow_async(ctx: Any) -> str:
    try:
        await asyncio.sleep(5)
    except asyncio.CancelledError:
        SEEN["cancelled"] = True
        raise
    return "late"


@activity(name="at_slow_sync", timeout=0.3, retry=ONCE)
def slow_sync(ctx: Any) -> str:
    RELEASE.wait(10)
    SEEN["abandoned"] = ctx.abandoned
    ctx.heartbeat()  # a no-op now
    return "late"


@activity(name="at_first_slow", timeout=0.3, retry=RetryPolicy(initial_interval=0.01))
def first_slow(ctx: Any) -> str:
    if ctx.attempt == 1:
        RELEASE.wait(10)
    return f"attempt {ctx.attempt}"


@workflow(name="at_calls")
def calls(ctx: Any, name: str) -> Generator[Command, Any, Any]:
    act = {"async": slow_async, "sync": slow_sync, "retry": first_slow}[name]
    try:
        return (yield act())
    except ActivityTimeout as exc:  # the failure is also an ActivityTimeout after a replay
        raise ActivityError(f"gave up: {exc}") from None


def make(make_app: Callable[..., App], registry: Registry) -> App:
    registry.add_workflow(calls)
    for act in (slow_async, slow_sync, first_slow):
        registry.add_activity(act)
    app: App = make_app()
    return app


def failed_attempts(app: App, instance_id: str) -> list[ActivityFailed]:
    return [e for e in app.history(instance_id) if isinstance(e, ActivityFailed)]


def test_an_async_activity_is_cancelled_at_its_timeout(
    make_app: Callable[..., App], registry: Registry
) -> None:
    with make(make_app, registry) as app:
        began = time.monotonic()
        handle = app.start_workflow(calls, "async")
        with pytest.raises(WorkflowFailed, match="gave up"):
            handle.result(timeout=20)
        assert time.monotonic() - began < 3.0
        [failed] = failed_attempts(app, handle.instance_id)
        assert failed.error.type == "replaykit.core.errors.ActivityTimeout"
        assert "timeout of 0.3 s and was cancelled" in failed.error.message
    assert SEEN["cancelled"] is True


def test_a_sync_activity_is_abandoned_and_its_late_result_never_recorded(
    make_app: Callable[..., App], registry: Registry
) -> None:
    with make(make_app, registry) as app:
        began = time.monotonic()
        handle = app.start_workflow(calls, "sync")
        with pytest.raises(WorkflowFailed, match="gave up"):
            handle.result(timeout=20)
        assert time.monotonic() - began < 3.0
        RELEASE.set()
        deadline = time.monotonic() + 5
        while "abandoned" not in SEEN and time.monotonic() < deadline:
            time.sleep(0.01)
        assert SEEN["abandoned"] is True
        time.sleep(0.1)
        history = app.history(handle.instance_id)
        assert not [e for e in history if isinstance(e, ActivityCompleted)]
        [failed] = failed_attempts(app, handle.instance_id)
        assert "abandoned" in failed.error.message


def test_a_timed_out_attempt_goes_through_the_retry_policy(
    make_app: Callable[..., App], registry: Registry
) -> None:
    with make(make_app, registry) as app:
        handle = app.start_workflow(calls, "retry")
        assert handle.result(timeout=20) == "attempt 2"
        [failed] = failed_attempts(app, handle.instance_id)
        assert failed.attempt == 1 and failed.error.type.endswith("ActivityTimeout")


def test_an_abandoned_attempt_sends_no_heartbeat_and_cannot_open_a_session() -> None:
    beats: list[int] = []
    ctx = RuntimeActivityContext(
        instance_id="i",
        workflow="w",
        step=1,
        attempt=1,
        outbox=Outbox("src"),
        heartbeat=lambda: beats.append(1),
    )
    ctx.heartbeat()
    ctx.abandoned = True
    ctx.heartbeat()
    assert beats == [1]
    with pytest.raises(ActivityTimeout):
        _ = ctx.session

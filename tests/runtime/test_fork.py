"""Fork / restart from a step (issue 13): a new instance from another's history up to step k.

An order fails at its charge (step 3) after it reserved stock and got paid. After the fix, a
fork from step 3 charges and ships without reserving again or waiting for the payment again; a
fork from step 2 waits for the payment again. The source stays as it was; the fork records where
it came from. The same on SQLite, PostgreSQL, MySQL and in memory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from replaykit import (
    Command,
    Receive,
    Subscribe,
    TerminalError,
    WaitEvent,
    WorkflowFailed,
    activity,
)
from replaykit.core.definitions import Registry, Workflow
from replaykit.core.errors import InvalidInput, StepOutOfRange, WorkflowNotFound
from replaykit.core.history import ActivityCompleted
from replaykit.runtime.app import App
from replaykit.testing import WorkflowEnvironment

ROOT = Path(__file__).resolve().parents[2]
calls: Counter[str] = Counter()
FIXED = [False]


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    calls.clear()
    FIXED[0] = False
    yield
    FIXED[0] = False


@activity(name="fk_reserve")
def reserve(ctx: Any, order_id: str) -> str:
    calls["reserve"] += 1
    return f"rsv-{order_id}"


@activity(name="fk_charge")
def charge(ctx: Any, order_id: str) -> str:
    calls["charge"] += 1
    if not FIXED[0]:
        raise TerminalError("the payment service rejected the request (a bug, since fixed)")
    return f"paid-{order_id}"


@activity(name="fk_ship")
def ship(ctx: Any, order_id: str) -> str:
    calls["ship"] += 1
    return f"shipped-{order_id}"


def order_code(ctx: Any, order_id: str) -> Generator[Command, Any, list[str]]:
    reservation = yield reserve(order_id)  # step 1
    paid = yield WaitEvent("fk.paid", match={"order": order_id})  # step 2
    receipt = yield charge(order_id)  # step 3
    shipped = yield ship(order_id)  # step 4
    return [reservation, paid.data["by"], receipt, shipped]


ORDER: Workflow[Any, Any] = Workflow(order_code, name="fk_order")
DONE = ["rsv-o1", "visa", "paid-o1", "shipped-o1"]


def _until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _activities(history: list[Any]) -> list[str]:
    return [e.name for e in history if isinstance(e, ActivityCompleted)]


def test_a_failed_instance_reruns_from_the_failed_step_without_rerunning_the_others(
    make_app: Callable[..., App],
) -> None:
    with make_app(workflows=[ORDER]) as app:
        app.start_workflow(ORDER, "o1", instance_id="o1")
        app.send_event("fk.paid", {"order": "o1", "by": "visa"}, instance_id="o1")
        with pytest.raises(WorkflowFailed, match="rejected"):
            app.result("o1", timeout=30)
        FIXED[0] = True  # the fix is deployed
        forked = app.fork("o1", step=3)
        assert app.result(forked, timeout=30) == DONE
        assert calls == Counter(reserve=1, charge=2, ship=1)  # reserve ran once, for o1
        record = app.status(forked)
        assert (record.forked_from, record.forked_step, record.status) == ("o1", 3, "completed")
        assert record.version == ORDER.version and forked.startswith("o1~fork-")
        assert app.status("o1").status == "failed"  # the source stays as it was
        assert _activities(app.history(forked)) == ["fk_reserve", "fk_charge", "fk_ship"]

        again = app.fork("o1", step=2, new_id="o1-again")  # from the wait: it waits again
        assert again == "o1-again"
        _until(lambda: app.status("o1-again").status == "waiting")
        app.send_event("fk.paid", {"order": "o1", "by": "visa"}, instance_id="o1-again")
        assert app.result("o1-again", timeout=30) == DONE
        assert calls == Counter(reserve=1, charge=3, ship=2)


def test_a_fork_of_a_completed_instance_from_its_end_replays_it_whole(
    make_app: Callable[..., App],
) -> None:
    FIXED[0] = True
    with make_app(workflows=[ORDER]) as app:
        app.start_workflow(ORDER, "o1", instance_id="o1")
        app.send_event("fk.paid", {"order": "o1", "by": "visa"}, instance_id="o1")
        assert app.result("o1", timeout=30) == DONE
        forked = app.fork("o1", step=5, new_id="copy")
        assert app.result(forked, timeout=30) == DONE
        assert calls == Counter(reserve=1, charge=1, ship=1)


def test_bad_forks_are_typed_errors_and_store_nothing(make_app: Callable[..., App]) -> None:
    with make_app(workflows=[ORDER]) as app:
        app.start_workflow(ORDER, "o1", instance_id="o1")
        _until(lambda: app.status("o1").status == "waiting")
        with pytest.raises(WorkflowNotFound):
            app.fork("nope", step=1)
        for step in (0, 3, -2):  # o1's history has step 1 only: 1 and 2 can be forked
            with pytest.raises(StepOutOfRange, match="steps 1 to 1"):
                app.fork("o1", step=step, new_id="bad")
        with pytest.raises(InvalidInput, match="exists"):
            app.fork("o1", step=1, new_id="o1")
        with pytest.raises(InvalidInput, match="new_id"):
            app.fork("o1", step=1, new_id="x" * 256)
        assert app.get_instance("bad") is None
        assert [r.instance_id for r in app.list_instances()] == ["o1"]


# -- a fork subscribes again to the channels its copied history subscribed to ------------------


def news_code(ctx: Any, order_id: str) -> Generator[Command, Any, list[Any]]:
    yield Subscribe("fk.news")  # step 1
    first = yield Receive("fk.news")  # step 2
    receipt = yield charge(order_id)  # step 3
    second = yield Receive("fk.news")  # step 4
    return [first.data, receipt, second.data]


NEWS: Workflow[Any, Any] = Workflow(news_code, name="fk_news")


def test_a_fork_receives_messages_on_the_channels_its_history_subscribed_to(
    make_app: Callable[..., App],
) -> None:
    with make_app(workflows=[NEWS]) as app:
        app.start_workflow(NEWS, "n1", instance_id="n1")
        _until(lambda: app.status("n1").status == "waiting")
        app.publish("fk.news", 1)
        with pytest.raises(WorkflowFailed, match="rejected"):
            app.result("n1", timeout=30)
        FIXED[0] = True
        forked = app.fork("n1", step=3, new_id="n1-fork")
        _until(lambda: app.status(forked).status == "waiting")  # at step 4, subscribed
        app.publish("fk.news", 2)
        assert app.result(forked, timeout=30) == [1, "paid-n1", 2]


# -- the same in memory ---------------------------------------------------------------------------


def _env() -> WorkflowEnvironment:
    registry = Registry()
    registry.add_workflow(ORDER)
    return WorkflowEnvironment(registry=registry)


def test_in_memory_a_fork_reruns_from_the_failed_step() -> None:
    env = _env()
    run = env.start(ORDER, "o1", instance_id="o1")
    run.send_event("fk.paid", {"order": "o1", "by": "visa"})
    with pytest.raises(WorkflowFailed, match="rejected"):
        run.result()
    FIXED[0] = True
    forked = env.fork("o1", step=3)
    assert forked.result() == DONE
    assert (forked.forked_from, forked.forked_step, forked.version) == ("o1", 3, ORDER.version)
    assert forked.instance_id.startswith("o1~fork-")
    assert calls == Counter(reserve=1, charge=2, ship=1)
    assert _activities(forked.history) == ["fk_reserve", "fk_charge", "fk_ship"]
    again = env.fork("o1", step=2, new_id="o1-again")
    assert again.status == "waiting" and again.waits  # waits for the payment again
    again.send_event("fk.paid", {"order": "o1", "by": "visa"})
    assert again.result() == DONE
    assert run.status == "failed"


def test_in_memory_bad_forks_are_the_same_typed_errors() -> None:
    env = _env()
    env.start(ORDER, "o1", instance_id="o1")
    with pytest.raises(WorkflowNotFound):
        env.fork("nope", step=1)
    with pytest.raises(StepOutOfRange, match="steps 1 to 1"):
        env.fork("o1", step=3)
    with pytest.raises(InvalidInput, match="exists"):
        env.fork("o1", step=1, new_id="o1")
    assert list(env.runs) == ["o1"]


def test_in_memory_a_fork_receives_messages_on_the_channels_its_history_subscribed_to() -> None:
    registry = Registry()
    registry.add_workflow(NEWS)
    env = WorkflowEnvironment(registry=registry)
    run = env.start(NEWS, "n1", instance_id="n1")
    env.publish("fk.news", 1)
    assert run.status == "failed"
    FIXED[0] = True
    forked = env.fork("n1", step=3, new_id="n1-fork")
    assert forked.subscriptions == {"fk.news": "broadcast"}
    env.publish("fk.news", 2)
    assert forked.result() == [1, "paid-n1", 2]


# -- a process crash during a fork ----------------------------------------------------------------


def _fork_and_die(url: str, new_id: str, when: str) -> int:
    args = [sys.executable, "-m", "tests.runtime.fork_crash_proc", url, "o1", new_id, "3", when]
    done = subprocess.run(args, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    return done.returncode


@pytest.mark.slow
def test_a_fork_is_atomic_when_its_process_is_killed(
    make_app: Callable[..., App], database_url: str
) -> None:
    with make_app(workflows=[ORDER]) as app:
        app.start_workflow(ORDER, "o1", instance_id="o1")
        app.send_event("fk.paid", {"order": "o1", "by": "visa"}, instance_id="o1")
        with pytest.raises(WorkflowFailed):
            app.result("o1", timeout=30)
    client = make_app(workflows=[ORDER], workers=False)
    source = client.storage.load_history("o1")
    # killed inside the fork's transaction, its history already copied: nothing of it stays
    assert _fork_and_die(database_url, "f1", "inside") == -signal.SIGKILL
    assert client.get_instance("f1") is None and client.storage.load_history("f1") == []
    # killed right after the fork returned: the fork is there with its whole copied history
    assert _fork_and_die(database_url, "f1", "after") == -signal.SIGKILL
    record = client.status("f1")
    assert (record.forked_from, record.forked_step, record.history_len) == ("o1", 3, 3)
    assert client.storage.load_history("f1")[1:] == source[1:3]
    FIXED[0] = True
    with make_app(workflows=[ORDER]) as app:  # a worker runs the fork from step 3 on
        assert app.result("f1", timeout=30) == DONE
    assert calls == Counter(reserve=1, charge=2, ship=1)

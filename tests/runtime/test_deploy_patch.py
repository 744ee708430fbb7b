"""Deploying a changed workflow to a database full of instances of the old code (issue 13).

The old order workflow reserves, sleeps, waits for payment, waits for a shipping child, charges,
then notifies while a timer runs. The new code charges *before* reserving, behind the patch
``charge-first`` (two points: where charge now goes, and where it was), and changes the last step
behind ``notify-v2``. Instances are parked at every step of the old code: crashed inside the first
activity, sleeping, waiting for an event, waiting on a child, crashed inside ``charge``, crashed
inside the last group's activity (its timer stored), completed. After the deploy every instance
finishes, none meets a NonDeterminismError, and every history replays under the new code; the
same in memory (``WorkflowEnvironment.resume``), in the same environment and from histories only.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

import msgspec
import pytest

from replaykit import All, Command, Patched, Sleep, WaitEvent, activity
from replaykit.core.definitions import Registry, Workflow
from replaykit.core.history import Event, ValueRecorded
from replaykit.runtime.app import App
from replaykit.testing import WorkflowEnvironment, replay_check

START = 1_000_000.0
CRASHING = [True]
#: where each instance's worker "dies" under the old code
CRASH = {"A": "reserve", "E": "charge", "F": "notify"}
CRASHED: list[tuple[str, str]] = []


class Crash(BaseException):
    """Stands for the worker process dying inside an activity (nothing of the step commits)."""


class Order(msgspec.Struct):
    id: str
    sleep: float = 0.0  # the sleep at step 2
    last: float = 1.0  # the timer of the last group


def _maybe_crash(name: str, order_id: str) -> None:
    if CRASHING[0] and CRASH.get(order_id) == name:
        CRASHED.append((name, order_id))
        raise Crash


@activity(name="dp_reserve")
def reserve(ctx: Any, order_id: str) -> str:
    _maybe_crash("reserve", order_id)
    return f"rsv-{order_id}"


@activity(name="dp_charge")
def charge(ctx: Any, order_id: str) -> str:
    _maybe_crash("charge", order_id)
    return f"paid-{order_id}"


@activity(name="dp_notify")
def notify(ctx: Any, order_id: str) -> str:
    _maybe_crash("notify", order_id)
    return f"told-{order_id}"


def ship_code(ctx: Any, order_id: str) -> Generator[Command, Any, str]:
    event = yield WaitEvent("shipped", match={"order": order_id})
    return f"label-{event.data['order']}"


SHIP: Workflow[Any, Any] = Workflow(ship_code, name="dp_ship")


def old_code(ctx: Any, o: Order) -> Generator[Command, Any, list[str]]:
    reservation = yield reserve(o.id)  # 1
    yield Sleep(o.sleep)  # 2
    yield WaitEvent("paid", match={"order": o.id})  # 3
    label = yield SHIP.child(o.id)  # 4
    receipt = yield charge(o.id)  # 5
    told, _ = yield All([notify(o.id), Sleep(o.last)])  # 6: 7, 8
    return [reservation, label, receipt, told]


def new_code(ctx: Any, o: Order) -> Generator[Command, Any, list[str]]:
    if (yield Patched("charge-first")):
        receipt = yield charge(o.id)  # charge first, then reserve
        reservation = yield reserve(o.id)
    else:
        reservation = yield reserve(o.id)
    yield Sleep(o.sleep)
    yield WaitEvent("paid", match={"order": o.id})
    label = yield SHIP.child(o.id)
    if not (yield Patched("charge-first")):  # the same patch: where charge used to be
        receipt = yield charge(o.id)
    if (yield Patched("notify-v2")):
        told = yield notify(o.id)
        yield Sleep(o.last)
    else:
        told, _ = yield All([notify(o.id), Sleep(o.last)])
    return [reservation, label, receipt, told]


def versions() -> tuple[Workflow[Any, Any], Workflow[Any, Any]]:
    return Workflow(old_code, name="dp_order"), Workflow(new_code, name="dp_order")


EXPECTED = {i: [f"rsv-{i}", f"label-{i}", f"paid-{i}", f"told-{i}"] for i in "ABCDEFGH"}
#: instance: (its order, send "paid" at once, ship its child at once, what is stored then)
PARKED = {
    "A": (Order("A"), False, False, []),  # crashed inside reserve (step 1)
    "B": (Order("B", sleep=3600), False, False, [2]),  # sleeping (step 2)
    "C": (Order("C"), False, False, [3]),  # waiting for "paid" (step 3)
    "D": (Order("D"), True, False, [4]),  # waiting on its child (step 4)
    "E": (Order("E"), True, True, []),  # crashed inside charge (step 5)
    "F": (Order("F", last=9000), True, True, [8]),  # crashed inside notify (group 6: 7, 8)
    "G": (Order("G"), True, True, []),  # completed
}
#: which patches each instance takes under the new code: those that had not reached a patch
#: point take it; F had (its old code had stored the last group's timer), G had ended
TAKES = {i: ["charge-first", "notify-v2"] for i in "AH"} | {i: ["notify-v2"] for i in "BCDE"}


def taken(history: list[Any]) -> list[str]:
    return [e.name for e in history if isinstance(e, ValueRecorded) and e.kind == "Patched"]


@pytest.fixture(autouse=True)
def _crashing() -> Generator[None, None, None]:
    CRASHING[0] = True
    CRASHED.clear()
    yield
    CRASHING[0] = True


class ManualClock:
    def __init__(self, now: float) -> None:
        self.now = now
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def _until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _ship_when_started(app: App, order_id: str, step: int = 4) -> None:
    child = f"{order_id}/{step}"  # the child's id: its parent's and the step that started it
    _until(lambda: app.get_instance(child) is not None, f"child {child}")
    app.send_event("shipped", {"order": order_id}, instance_id=child)


def _all_completed(app: App, clock: ManualClock) -> bool:
    clock.advance(1000)  # the last timers fall due
    return all(app.status(i).status == "completed" for i in "ABCDEFGH")


def _told(app: App, order_id: str) -> bool:
    return any(getattr(e, "result", None) == f"told-{order_id}" for e in app.history(order_id))


def _park_old_instances(app: App, old: Workflow[Any, Any], clock: ManualClock) -> None:
    for order_id, (order, pay, ship, _) in PARKED.items():
        app.start_workflow(old, order, instance_id=order_id)
        if pay:
            app.send_event("paid", {"order": order_id}, instance_id=order_id)
        if ship:
            _ship_when_started(app, order_id)
    _until(lambda: len(CRASHED) == 3, "the three crashes")
    _until(lambda: app.storage.registered_steps("G") == [8], "G to wait on its last timer")
    clock.advance(2)  # G's last timer is due; B's sleep is not, nor the crashed leases
    _until(lambda: app.status("G").status == "completed", "G to complete")
    for order_id, (_, _, _, stored) in PARKED.items():
        _until(lambda i=order_id, s=stored: app.storage.registered_steps(i) == s, order_id)
    _until(lambda: app.status("D/4").status == "waiting", "D's child to wait")


def new_code_app() -> App:
    """The App of the new deploy, as ``replaykit replay-check`` imports it (``--database`` says
    where the histories are)."""
    _, new = versions()
    return App("sqlite:///unused.db", workflows=[new, SHIP], registry=Registry(), workers=False)


def test_a_patched_deploy_finishes_instances_parked_at_every_step_of_the_old_code(
    make_app: Callable[..., App], caplog: pytest.LogCaptureFixture, database_url: str
) -> None:
    old, new = versions()
    clock = ManualClock(START)
    with make_app(workflows=[old, SHIP], clock=clock, lease_seconds=600) as app:
        _park_old_instances(app, old, clock)
    CRASHING[0] = False
    clock.advance(7200)  # B's sleep is due, the crashed workers' leases have expired
    with (
        caplog.at_level(logging.ERROR),
        make_app(workflows=[new, SHIP], clock=clock, lease_seconds=10**7) as app,
    ):
        app.start_workflow(new, Order("H"), instance_id="H")
        for order_id in "ABCH":
            app.send_event("paid", {"order": order_id}, instance_id=order_id)
        _until(lambda: _told(app, "F"), "F to go on where its old code left it")
        for order_id in "BCD":
            _ship_when_started(app, order_id)
        for order_id in "AH":  # on the new path: Patched, charge, reserve, ... child at step 6
            _ship_when_started(app, order_id, step=6)
        _until(lambda: _all_completed(app, clock), "every instance to complete")
        for order_id in "ABCDEFGH":
            assert app.result(order_id, timeout=5) == EXPECTED[order_id], order_id
        histories = {i: app.history(i) for i in "ABCDEFGH"}
    assert "NonDeterminismError" not in caplog.text
    for order_id, history in histories.items():
        assert taken(history) == TAKES.get(order_id, []), order_id
        assert replay_check(new, history).ok, order_id
    _replay_check_command_passes_per_version(database_url, old, new)


def _replay_check_command_passes_per_version(
    url: str, old: Workflow[Any, Any], new: Workflow[Any, Any]
) -> None:
    """``replaykit replay-check`` over the database: every instance replays under the new code;
    per version, the old one's instances passed the patch points on the old path unless they
    had not reached them, the new one's took both."""
    from typer.testing import CliRunner

    from replaykit.integrations.cli import cli

    app_path = f"{__name__}:new_code_app"
    result = CliRunner().invoke(cli, ["--database", url, "--json", "replay-check", app_path])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["checked"], report["failed"], report["skipped"]) == (16, 0, [])
    by_version = {(v["workflow"], v["version"]): v for v in report["versions"]}
    assert by_version[("dp_order", old.version)] == {
        "workflow": "dp_order",
        "version": old.version,
        "current": False,
        "checked": 7,
        "ok": 7,
        "failed": 0,
        "patches": {"charge-first": {"new": 1, "old": 6}, "notify-v2": {"new": 5, "old": 2}},
    }
    newest = by_version[("dp_order", new.version)]
    assert (newest["current"], newest["checked"], newest["ok"]) == (True, 1, 1)
    assert newest["patches"] == {
        "charge-first": {"new": 1, "old": 0},
        "notify-v2": {"new": 1, "old": 0},
    }
    assert by_version[("dp_ship", SHIP.version)]["ok"] == 8  # each order's shipping child


# -- the same in memory ---------------------------------------------------------------------------


def _memory_env(old: Workflow[Any, Any], new: Workflow[Any, Any]) -> WorkflowEnvironment:
    registry = Registry()
    for item in (old, SHIP):
        registry.add_workflow(item)
    return WorkflowEnvironment(registry=registry, start_time=START)


def _finish_in_memory(env: WorkflowEnvironment, ids: str) -> None:
    """Send what the instances wait for and let virtual time run until all of them end."""
    for _ in range(100):
        env.run_until_idle()
        if all(env.runs[i].finished for i in ids):
            return
        for instance_id, run in list(env.runs.items()):
            for wait in list(run.waits.values()):
                order_id = instance_id.split("/")[0]
                env.send_event(wait.key, {"order": order_id}, instance_id=instance_id)
        env.fire_next_timer(limit=env.clock.now + 10 * 86400)
    raise AssertionError({i: env.runs[i].status for i in ids})


def _park_in_memory(env: WorkflowEnvironment, old: Workflow[Any, Any]) -> None:
    for order_id, (order, pay, ship, _) in PARKED.items():
        try:
            env.start(old, order, instance_id=order_id)
            env.advance(0)  # a sleep of 0 s is due at once
            if pay:
                env.send_event("paid", {"order": order_id}, instance_id=order_id)
            if ship:
                env.send_event("shipped", {"order": order_id}, instance_id=f"{order_id}/4")
            if order_id == "G":
                env.runs["G"].run_to_completion()
        except Crash:
            pass
    assert len(CRASHED) == 3
    for order_id, (_, _, _, stored) in PARKED.items():
        assert env.store.registered_steps(order_id) == stored, order_id


def test_the_same_deploy_in_memory_resumes_every_instance_in_its_environment() -> None:
    old, new = versions()
    env = _memory_env(old, new)
    _park_in_memory(env, old)
    CRASHING[0] = False
    env.registry.add_workflow(new)
    old_histories = {i: list(env.runs[i].history) for i in PARKED}
    for order_id in "ABCDEF":  # what a worker of the new deploy does with each of them
        env.resume(new, old_histories[order_id])
    env.start(new, Order("H"), instance_id="H")
    _finish_in_memory(env, "ABCDEFGH")
    for order_id in "ABCDEFGH":
        run = env.runs[order_id]
        assert run.result() == EXPECTED[order_id], order_id
        assert taken(run.history) == TAKES.get(order_id, []), order_id
        assert replay_check(new, run.history).ok, order_id


def test_the_same_deploy_in_memory_resumes_every_instance_from_its_history_alone() -> None:
    old, new = versions()
    env = _memory_env(old, new)
    _park_in_memory(env, old)
    CRASHING[0] = False
    for order_id in "ABCDEFG":
        history: list[Event] = list(env.runs[order_id].history)
        fresh = _memory_env(old, new)
        fresh.registry.add_workflow(new)
        run = fresh.resume(new, history)
        _finish_in_memory(fresh, order_id)
        assert run.result() == EXPECTED[order_id], order_id
        assert replay_check(new, run.history).ok, order_id

"""Patches in replaykit.testing: new instances take them, old ones keep their path, and a deploy
(``env.resume(new_code, run.history)`` in the same environment) sees what the store holds."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import Any

from replaykit import All, AnyOf, Command, Patched, Registry, Sleep, WaitEvent, WorkflowCancelled
from replaykit.core.definitions import Activity, Workflow
from replaykit.core.history import ValueRecorded
from replaykit.testing import WorkflowEnvironment


class Crash(BaseException):
    """Stands for the worker process dying inside an activity."""


def reserve(ctx: Any, sku: str) -> str:
    return f"rsv-{sku}"


def charge(ctx: Any, amount: int) -> str:
    return f"paid-{amount}"


REGISTRY = Registry()
RESERVE = Activity(reserve, name="tp_reserve")
CHARGE = Activity(charge, name="tp_charge")
REGISTRY.add_activity(RESERVE)
REGISTRY.add_activity(CHARGE)


def old_code(ctx: Any) -> Generator[Command, Any, list[str]]:
    reservation = yield RESERVE("book")
    done = yield All([CHARGE(10), Sleep(60)])
    return [reservation, done[0]]


def new_code(ctx: Any) -> Generator[Command, Any, list[str]]:
    if (yield Patched("charge-first")):
        receipt = yield CHARGE(10)
        reservation = yield RESERVE("book")
        yield Sleep(60)
        return [reservation, receipt]
    reservation = yield RESERVE("book")
    done = yield All([CHARGE(10), Sleep(60)])
    return [reservation, done[0]]


def new_code_patched_later(ctx: Any) -> Generator[Command, Any, list[str]]:
    reservation = yield RESERVE("book")
    if (yield Patched("charge-first")):
        receipt = yield CHARGE(10)
        yield Sleep(60)
        return [reservation, receipt]
    done = yield All([CHARGE(10), Sleep(60)])
    return [reservation, done[0]]


def deploy(fn: Any) -> Workflow[Any, Any]:
    wf: Workflow[Any, Any] = Workflow(fn, name="tp_order")
    REGISTRY.add_workflow(wf)
    return wf


def markers(history: list[Any]) -> list[int]:
    return [e.step for e in history if isinstance(e, ValueRecorded) and e.kind == "Patched"]


def test_a_new_instance_records_the_marker_and_runs_the_new_path() -> None:
    env = WorkflowEnvironment(registry=REGISTRY)
    run = env.start(deploy(new_code), instance_id="fresh")
    assert run.result() == ["rsv-book", "paid-10"]
    assert [name for name, _, _ in run.activity_calls] == ["tp_charge", "tp_reserve"]
    assert markers(run.history) == [1]


def test_an_old_history_resumed_under_the_patch_finishes_on_the_old_path() -> None:
    env = WorkflowEnvironment(registry=REGISTRY)
    old = env.start(deploy(old_code), instance_id="old")
    old.advance(5)  # parked on the All's timer
    resumed = WorkflowEnvironment(registry=REGISTRY).resume(deploy(new_code), old.history)
    assert resumed.result() == ["rsv-book", "paid-10"]
    assert markers(resumed.history) == []


def test_a_deploy_after_a_crash_inside_a_group_keeps_the_old_path_the_store_shows() -> None:
    crash = {"on": True}

    def crashing_charge(ctx: Any, amount: int) -> str:
        if crash["on"]:
            raise Crash
        return f"paid-{amount}"

    env = WorkflowEnvironment(registry=REGISTRY, activities={"tp_charge": crashing_charge})
    with contextlib.suppress(Crash):
        env.start(deploy(old_code), instance_id="crashed")
    history = list(env.runs["crashed"].history)  # reserve done; the All's timer is stored
    crash["on"] = False
    resumed = env.resume(deploy(new_code_patched_later), history)
    assert resumed.result() == ["rsv-book", "paid-10"]
    assert markers(resumed.history) == []  # the stored timer at step 4 showed the old code


def test_without_anything_stored_the_instance_takes_the_patch_at_the_end_of_its_history() -> None:
    env = WorkflowEnvironment(registry=REGISTRY)
    old = env.start(deploy(old_code), instance_id="cut")
    resumed = WorkflowEnvironment(registry=REGISTRY).resume(
        deploy(new_code_patched_later), old.history[:2]
    )
    assert resumed.result() == ["rsv-book", "paid-10"]
    assert markers(resumed.history) == [2]


def test_two_events_reaching_a_new_instance_at_once_do_not_turn_it_to_the_old_path() -> None:
    seen: list[bool] = []

    def waits_then_patches(ctx: Any) -> Generator[Command, Any, str]:
        yield WaitEvent("go")
        seen.append((yield Patched("p")))
        try:
            yield Sleep(10)
        except WorkflowCancelled:
            return "cancelled"
        return "slept"

    env = WorkflowEnvironment(registry=REGISTRY)
    wf: Workflow[Any, Any] = Workflow(waits_then_patches, name="tp_two_events")
    run = env.start(wf, instance_id="two")
    env.store.send_event(_event("go"), "two", env.clock.now)  # both land in the inbox
    env.store.cancel("two", "stop", env.clock.now)
    env.run_until_idle()
    assert seen[-1] is True
    assert markers(run.history) == [2]


def _event(type: str) -> Any:
    from replaykit import EventData

    return EventData(type=type)


def test_a_losers_late_timer_does_not_turn_a_new_instance_to_the_old_path() -> None:
    # found by the property suite: an Any that leaves its losers running, then two patch
    # points; a loser's timer firing while the second Patched waited for its marker made it
    # false in a brand-new instance, and true when the history was replayed after deprecation
    def any_then_patches(ctx: Any) -> Generator[Command, Any, list[bool]]:
        yield AnyOf([Sleep(1.5), Sleep(1.5), Sleep(1.5)], cancel_losers=False)
        first = yield Patched("p0")
        second = yield Patched("p1")
        return [first, second]

    env = WorkflowEnvironment(registry=REGISTRY)
    wf: Workflow[Any, Any] = Workflow(any_then_patches, name="tp_any_losers")
    run = env.start(wf, instance_id="losers")
    run.run_to_completion()
    assert run.result() == [True, True]
    resumed = WorkflowEnvironment(registry=REGISTRY).resume(wf, run.history)
    resumed.run_to_completion()
    assert resumed.result() == [True, True]

"""The planner: a scheduled command (with now, the instance id and outside values) in, effects out.

One behaviour per test; the executors' matches over these effects are tested through the runtime
and the test environment (and compared with each other by tests/differential).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest

from replaykit import (
    Command,
    Now,
    Publish,
    Random,
    Receive,
    Registry,
    SendTo,
    SideEffect,
    Sleep,
    SleepUntil,
    StartChild,
    Subscribe,
    Unsubscribe,
    Uuid,
    WaitEvent,
    activity,
    workflow,
)
from replaykit.core.commands import Compensate, RetryTimer
from replaykit.core.decisions import Decision, ScheduledCommand
from replaykit.core.effects import (
    CreateChild,
    Finish,
    Planner,
    Record,
    RegisterWait,
    RunActivity,
    Send,
    SetTimer,
    Subscription,
)
from replaykit.core.errors import InvalidCommand
from replaykit.core.history import (
    ChildCompleted,
    ChildFailed,
    EffectApplied,
    ErrorInfo,
    EventTimedOut,
    ReceiveTimedOut,
    RetryTimerFired,
    TimerFired,
    ValueRecorded,
    WorkflowStarted,
)

NOW = 1000.0


class FixedValues:
    def uuid(self) -> str:
        return "u-1"

    def random(self) -> float:
        return 0.5

    def side_effect(self, fn: Callable[[], Any]) -> Any:
        return fn()


@activity(name="fx_act")
def fx_act(ctx: Any, x: int) -> int:
    return x


@workflow(name="fx_child")
def fx_child(ctx: Any, n: int) -> Generator[Command, Any, int]:
    return n
    yield


REGISTRY = Registry()
REGISTRY.add_workflow(fx_child)
PLANNER = Planner("fx_parent", "p-1", REGISTRY, FixedValues())


def plan(command: Command, step: int = 3) -> tuple[Any, ...]:
    return PLANNER.plan(ScheduledCommand(step=step, command=command), NOW)


def test_an_activity_or_a_compensation_is_run() -> None:
    sc = ScheduledCommand(step=2, command=fx_act(1), attempt=2)
    assert PLANNER.plan(sc, NOW) == (RunActivity(scheduled=sc),)
    comp = ScheduledCommand(step=5, command=Compensate(call=fx_act(1), of_step=2))
    assert PLANNER.plan(comp, NOW) == (RunActivity(scheduled=comp),)


def test_sleep_and_sleep_until_set_a_timer() -> None:
    assert plan(Sleep(60)) == (SetTimer(step=3, fire_at=1060.0, event=TimerFired(step=3)),)
    assert plan(SleepUntil(5000.0)) == (SetTimer(step=3, fire_at=5000.0, event=TimerFired(step=3)),)


def test_a_retry_timer_fires_the_next_attempt() -> None:
    event = RetryTimerFired(step=3, name="fx_act", attempt=2)
    assert plan(RetryTimer(seconds=2.0, attempt=2, name="fx_act")) == (
        SetTimer(step=3, fire_at=1002.0, event=event),
    )


def test_wait_event_registers_a_wait_and_its_timeout() -> None:
    assert plan(WaitEvent("paid", timeout=5, match={"k": [1, 2]})) == (
        RegisterWait(step=3, kind="event", key="paid", match={"k": [1, 2]}),
        SetTimer(step=3, fire_at=1005.0, event=EventTimedOut(step=3, name="paid"), is_timeout=True),
    )
    assert plan(WaitEvent("paid")) == (RegisterWait(step=3, kind="event", key="paid"),)


def test_receive_registers_a_message_wait_and_its_timeout() -> None:
    timed_out = ReceiveTimedOut(step=3, name="inbox")
    assert plan(Receive("inbox", timeout=1)) == (
        RegisterWait(step=3, kind="message", key="inbox"),
        SetTimer(step=3, fire_at=1001.0, event=timed_out, is_timeout=True),
    )


@pytest.mark.parametrize(
    ("command", "kind", "name", "value"),
    [
        (Now(), "Now", "", NOW),
        (Uuid(), "Uuid", "", "u-1"),
        (Random(), "Random", "", 0.5),
        (SideEffect(lambda: {"n": 1}, name="one"), "SideEffect", "one", {"n": 1}),
    ],
)
def test_values_are_recorded(command: Command, kind: str, name: str, value: Any) -> None:
    event = ValueRecorded(step=3, name=name, kind=kind, value=value)
    assert plan(command) == (Record(event=event),)


def test_publish_and_send_to_store_a_message_and_record_that_they_did() -> None:
    assert plan(Publish("news", {"a": [1]}, metadata={"m": "1"})) == (
        Send(channel="news", data={"a": [1]}, metadata={"m": "1"}),
        Record(event=EffectApplied(step=3, name="news", kind="Publish")),
    )
    assert plan(SendTo("i-9", "inbox", 7)) == (
        Send(channel="inbox", data=7, target="i-9"),
        Record(event=EffectApplied(step=3, name="inbox", kind="SendTo")),
    )


def test_subscribe_and_unsubscribe() -> None:
    assert plan(Subscribe("jobs", mode="competing")) == (
        Subscription(channel="jobs", mode="competing"),
        Record(event=EffectApplied(step=3, name="jobs", kind="Subscribe")),
    )
    assert plan(Unsubscribe("jobs")) == (
        Subscription(channel="jobs", subscribe=False),
        Record(event=EffectApplied(step=3, name="jobs", kind="Unsubscribe")),
    )


def test_a_child_is_created_with_its_first_event() -> None:
    started = WorkflowStarted(
        workflow="fx_child", instance_id="p-1/3", input=4, parent_id="p-1", at=NOW
    )
    create = CreateChild(
        child_id="p-1/3", workflow="fx_child", started=started, input=4, parent_step=3
    )
    assert plan(StartChild(workflow="fx_child", input=4)) == (create,)


def test_a_default_child_id_names_the_run_after_a_recur() -> None:
    """Run 1 keeps ``<parent>/<step>`` (existing histories); a later run, whose steps start at 1
    again, gets ``<parent>@<run>/<step>`` so its children never collide with run 1's."""
    assert PLANNER.child_id(3) == "p-1/3"
    planner = Planner("fx_parent", "p-1", REGISTRY, FixedValues(), run=2)
    child = StartChild(workflow="fx_child", input=4)
    (create,) = planner.plan(ScheduledCommand(step=3, command=child), NOW)
    assert isinstance(create, CreateChild) and create.child_id == "p-1@2/3"
    assert create.started.instance_id == "p-1@2/3"


def test_a_child_started_without_waiting_records_its_id() -> None:
    (create, record) = plan(StartChild(workflow="fx_child", input=4, instance_id="c", wait=False))
    assert isinstance(create, CreateChild) and create.parent_step is None
    assert create.started.instance_id == "c"
    assert record == Record(
        event=EffectApplied(step=3, name="fx_child", kind="StartChild", value="c")
    )


@pytest.mark.parametrize(
    ("command", "error_type"),
    [
        (StartChild(workflow="nobody"), "replaykit.core.errors.UnknownWorkflow"),
        (StartChild(workflow="fx_child", input="not an int"), "replaykit.core.errors.InvalidInput"),
    ],
)
def test_a_child_that_cannot_start_fails_at_once(command: Command, error_type: str) -> None:
    ((effect,),) = [plan(command)]
    assert isinstance(effect, Record) and isinstance(effect.event, ChildFailed)
    assert effect.event.error.type == error_type
    assert effect.event.error.retryable is False


def test_an_unknown_command_is_refused() -> None:
    with pytest.raises(InvalidCommand):
        plan(Command())


def test_finish_tells_a_waiting_parent() -> None:
    done = Decision(status="completed", result=5)
    finish = PLANNER.finish(done, NOW, parent_id="q", parent_step=2)
    event = ChildCompleted(step=2, name="fx_parent", child_id="p-1", result=5, at=NOW)
    assert finish == Finish(status="completed", result=5, parent_event=event)
    error = ErrorInfo(type="x.E", message="m")
    failed = PLANNER.finish(
        Decision(status="failed", error=error), NOW, parent_id="q", parent_step=2
    )
    assert failed.parent_event == ChildFailed(
        step=2, name="fx_parent", child_id="p-1", error=error, at=NOW
    )
    assert PLANNER.finish(done, NOW, parent_id="q").parent_event is None  # fire and forget


def test_finish_after_recur_starts_the_next_run() -> None:
    planner = Planner("fx_parent", "p-1", REGISTRY, FixedValues(), run=2)
    finish = planner.finish(Decision(status="continued", recur_input=7), NOW, parent_id="q")
    assert finish.next_run == WorkflowStarted(
        workflow="fx_parent",
        instance_id="p-1",
        input=7,
        run=3,
        continued_from="p-1@2",
        parent_id="q",
        at=NOW,
    )

"""Where a fork cuts a history (``core.forking``): made-up histories in, cut positions out."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from replaykit.core.commands import ChannelMode, Command, Sleep, Subscribe, Unsubscribe
from replaykit.core.definitions import Registry, Workflow
from replaykit.core.effects import Subscription
from replaykit.core.errors import InvalidInput, StepOutOfRange
from replaykit.core.forking import fork_cut, forked_start, last_step, renewed_subscriptions
from replaykit.core.history import (
    ActivityCompleted,
    CancelRequested,
    EffectApplied,
    Event,
    EventData,
    EventReceived,
    TimerFired,
    WorkflowStarted,
)
from replaykit.core.interpreter import Interpreter

START = WorkflowStarted(workflow="wf", instance_id="a", input=1, run=3, parent_id="p", at=5.0)
#: steps 1 and 2 (a group's members 3 and 4 resolve out of order), then 5
HISTORY: list[Event] = [
    START,
    ActivityCompleted(step=1, name="reserve"),
    TimerFired(step=4),
    ActivityCompleted(step=3, name="charge"),
    EventReceived(step=5, name="paid", event=EventData(type="paid")),
]


@pytest.mark.parametrize(
    ("step", "kept"),
    [(1, 1), (2, 2), (3, 2), (4, 2), (5, 4), (6, 5)],
)
def test_a_fork_keeps_every_event_before_the_first_of_its_step_or_later(
    step: int, kept: int
) -> None:
    assert fork_cut(HISTORY, step) == kept


def test_a_fork_never_keeps_a_cancellation_request() -> None:
    cancelled = [*HISTORY[:2], CancelRequested(reason="no"), *HISTORY[2:]]
    assert fork_cut(cancelled, 6) == 2
    assert fork_cut(cancelled, 2) == 2


@pytest.mark.parametrize("step", [0, -1, 7, 100, "2", 2.0, True])
def test_a_step_the_history_does_not_have_is_a_typed_error(step: object) -> None:
    with pytest.raises(StepOutOfRange, match="steps 1 to 5") as raised:
        fork_cut(HISTORY, step, instance_id="a")  # type: ignore[arg-type]
    assert isinstance(raised.value, InvalidInput) and isinstance(raised.value, IndexError)
    assert (raised.value.instance_id, raised.value.last_step) == ("a", 5)


def test_a_history_without_steps_forks_only_from_step_1() -> None:
    assert last_step([START]) == 0
    assert fork_cut([START], 1) == 1
    with pytest.raises(StepOutOfRange):
        fork_cut([START], 2)


def test_the_fork_starts_a_run_1_of_its_own_without_parent_naming_its_origin() -> None:
    started = forked_start(START, "b", "a", 2)
    assert started == WorkflowStarted(
        workflow="wf", instance_id="b", input=1, at=5.0, forked_from="a", forked_step=2
    )


def test_a_replayed_fork_subscribes_again_to_what_its_history_subscribed_to() -> None:
    subscribed: dict[str, ChannelMode] = {"news": "broadcast", "jobs": "competing"}
    assert renewed_subscriptions(forked_start(START, "b", "a", 2), subscribed) == (
        Subscription(channel="news", mode="broadcast"),
        Subscription(channel="jobs", mode="competing"),
    )
    assert renewed_subscriptions(START, subscribed) == ()  # not a fork: the store has them


def test_the_interpreter_knows_what_its_history_left_it_subscribed_to() -> None:
    def channels(ctx: object) -> Generator[Command, object, None]:
        yield Subscribe("a")
        yield Subscribe("b", mode="competing")
        yield Unsubscribe("a")
        yield Sleep(1)

    history = [
        WorkflowStarted(workflow="channels", instance_id="c"),
        EffectApplied(step=1, name="a", kind="Subscribe"),
        EffectApplied(step=2, name="b", kind="Subscribe"),
        EffectApplied(step=3, name="a", kind="Unsubscribe"),
    ]
    interp = Interpreter(Workflow(channels), instance_id="c", registry=Registry())
    interp.feed(history[:3], replaying=True)
    assert interp.subscriptions == {"a": "broadcast", "b": "competing"}
    interp.feed(history[3:])
    assert interp.subscriptions == {"b": "competing"}

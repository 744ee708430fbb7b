"""Where a fork cuts a history (``core.forking``): made-up histories in, cut positions out."""

from __future__ import annotations

import pytest

from replaykit.core.errors import InvalidInput, StepOutOfRange
from replaykit.core.forking import fork_cut, forked_start, last_step
from replaykit.core.history import (
    ActivityCompleted,
    CancelRequested,
    Event,
    EventData,
    EventReceived,
    TimerFired,
    WorkflowStarted,
)

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


def test_the_fork_starts_a_run_1_of_its_own_without_parent() -> None:
    started = forked_start(START, "b")
    assert started == WorkflowStarted(workflow="wf", instance_id="b", input=1, at=5.0)

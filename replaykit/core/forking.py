"""Where a fork of an instance cuts its history (pure: history in, a cut out).

A fork is a new instance whose history is a *prefix* of another's: every prefix of a history is
a state the instance was in (as if its worker had crashed right there), so the new instance
resumes from a consistent point, replaying what the prefix recorded and running the rest again.
``fork_cut(history, step)`` chooses the prefix for "re-run from step ``step``": every event
before the first one that belongs to step ``step`` or a later one, and before any cancellation
request (a fork of a cancelled instance is not cancelled).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from .commands import ChannelMode
from .effects import Subscription
from .errors import StepOutOfRange
from .history import CancelRequested, Event, StepEvent, WorkflowStarted


def last_step(history: Sequence[Event]) -> int:
    """The highest step any event of ``history`` belongs to (0: none yet)."""
    return max((e.step for e in history if isinstance(e, StepEvent)), default=0)


def fork_cut(history: Sequence[Event], step: int, *, instance_id: str = "") -> int:
    """How many events of ``history`` (a run's, ``WorkflowStarted`` first) a fork from
    ``step`` keeps. ``step`` runs from 1 to one past the last step of the history (that one
    keeps everything: the fork replays the whole run and goes on from its end); anything else
    raises :class:`StepOutOfRange`."""
    top = last_step(history)
    if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= top + 1:
        raise StepOutOfRange(
            f"cannot fork instance {instance_id!r} from step {step!r}: its history has steps "
            f"1 to {top}; fork from one of them (it runs again) or from {top + 1} (the end)",
            instance_id=instance_id,
            step=step if isinstance(step, int) else 0,
            last_step=top,
        )
    for position, event in enumerate(history):
        if position == 0:
            continue
        if isinstance(event, CancelRequested):
            return position
        if isinstance(event, StepEvent) and event.step >= step:
            return position
    return len(history)


def forked_start(started: Event, new_id: str, source_id: str, step: int) -> WorkflowStarted:
    """The first event of a fork: the source run's ``WorkflowStarted`` for ``new_id``, a run 1
    of its own, with no parent (a fork of a child is a top-level instance) and no deadline (the
    source's deadline was the source's), naming its origin."""
    assert isinstance(started, WorkflowStarted)
    return msgspec.structs.replace(
        started,
        instance_id=new_id,
        run=1,
        continued_from=None,
        parent_id=None,
        deadline=None,
        forked_from=source_id,
        forked_step=step,
    )


def renewed_subscriptions(
    started: Event, subscribed: dict[str, ChannelMode]
) -> tuple[Subscription, ...]:
    """What a replayed fork subscribes to again in its own name: the channels its copied
    history subscribed to (``Interpreter.subscriptions``), since the store holds them for the
    source only. Nothing for an instance that is not a fork. Applied on every replay of a fork:
    subscribing again to a channel keeps its cursor, so it is a no-op once done."""
    if not isinstance(started, WorkflowStarted) or started.forked_from is None:
        return ()
    return tuple(Subscription(channel=c, mode=m) for c, m in subscribed.items())


__all__ = ["fork_cut", "forked_start", "last_step", "renewed_subscriptions"]

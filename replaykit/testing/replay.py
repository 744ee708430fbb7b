"""Replay checks before a deploy: does the current code still fit the histories it recorded?"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from ..core.definitions import Registry, Workflow
from ..core.errors import NonDeterminismError
from ..core.history import Event, WorkflowStarted
from ..core.interpreter import Interpreter


class ReplayCheck(msgspec.Struct, kw_only=True):
    """The outcome of :func:`replay_check`."""

    ok: bool
    instance_id: str
    events: int
    status: str
    error: str = ""
    step: int = 0
    #: the patch points the history decided: patch id -> taken (False: the instance passed that
    #: point under the code from before the patch, so it still needs the old branch)
    patches: dict[str, bool] = {}

    def raise_if_failed(self) -> None:
        if not self.ok:
            raise NonDeterminismError(self.error, instance_id=self.instance_id, step=self.step)


def replay_check(
    wf: Workflow[Any, Any], history: Iterable[Event], *, registry: Registry | None = None
) -> ReplayCheck:
    """Replay stored ``history`` against the current code of ``wf``; report non-determinism.

    >>> report = replay_check(order, stored_history)
    >>> report.ok, report.error
    """
    events = list(history)
    first = events[0] if events else None
    instance_id = first.instance_id if isinstance(first, WorkflowStarted) else ""
    interp = Interpreter(wf, instance_id=instance_id, registry=registry)
    try:
        decision = interp.feed(events, replaying=True)
    except NonDeterminismError as exc:
        return ReplayCheck(
            ok=False,
            instance_id=instance_id,
            events=interp.events_applied,
            status="broken",
            error=str(exc),
            step=exc.step,
            patches=interp.patches,
        )
    return ReplayCheck(
        ok=True,
        instance_id=instance_id,
        events=len(events),
        status=decision.status,
        patches=interp.patches,
    )


__all__ = ["ReplayCheck", "replay_check"]

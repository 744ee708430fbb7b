"""What the interpreter answers: commands to execute and the workflow's status."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from .commands import Command
from .history import ErrorInfo

Status = Literal["running", "completed", "failed", "cancelled", "continued"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled", "continued"})


class ScheduledCommand(msgspec.Struct, frozen=True, kw_only=True):
    """A command the runtime must execute for ``step`` (``attempt`` counts activity retries)."""

    step: int
    command: Command
    attempt: int = 1
    group: int | None = None


class ChildCancel(msgspec.Struct, frozen=True, kw_only=True):
    """A child to cancel (its parent-close policy is ``cancel``): the one ``command`` (a
    ``StartChild``) started at ``step``, because of ``reason``."""

    step: int
    command: Command
    reason: str


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """The interpreter's answer after a feed.

    ``commands`` are the commands issued during the feed that history has not resolved yet (in the
    order issued); ``cancelled`` are steps whose timers and waits the runtime may drop (losers of
    an ``Any``, waits interrupted by cancellation); ``cancel_children`` are children to cancel
    (the parent's run ended, or they lost an ``Any``). ``status`` with ``result`` (JSON builtins),
    ``error`` or ``recur_input`` describes the end of the run.
    """

    commands: tuple[ScheduledCommand, ...] = ()
    cancelled: tuple[int, ...] = ()
    cancel_children: tuple[ChildCancel, ...] = ()
    status: Status = "running"
    result: Any = None
    error: ErrorInfo | None = None
    recur_input: Any = None

    @property
    def finished(self) -> bool:
        """True once the run has ended (completed, failed, cancelled or continued as new)."""
        return self.status in TERMINAL

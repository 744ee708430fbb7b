"""The history events that record how an activity or a compensation ended (shared by the runtime
and the in-memory test environment, so both write exactly the same history)."""

from __future__ import annotations

from typing import Any

from .commands import ActivityCall, Compensate
from .decisions import ScheduledCommand
from .errors import TerminalError
from .failures import error_info
from .history import (
    ActivityCompleted,
    ActivityFailed,
    CompensationCompleted,
    CompensationFailed,
    Event,
)


def call_of(scheduled: ScheduledCommand) -> ActivityCall[Any]:
    """The activity call behind a scheduled ActivityCall or Compensate."""
    command = scheduled.command
    if isinstance(command, Compensate):
        return command.call
    assert isinstance(command, ActivityCall)
    return command


def activity_outcome(
    scheduled: ScheduledCommand,
    *,
    result: Any = None,
    error: BaseException | None = None,
    fp: str | None = None,
) -> Event:
    """The event for ``scheduled`` ending with ``result`` (JSON builtins) or ``error``; ``fp`` is
    the call's argument fingerprint when the caller has it (``Interpreter.fingerprint_of``).

    A :class:`TerminalError` is recorded as not retryable.
    """
    command, step, attempt = scheduled.command, scheduled.step, scheduled.attempt
    info = (
        None if error is None else error_info(error, retryable=not isinstance(error, TerminalError))
    )
    if isinstance(command, Compensate):
        name, of_step = command.call.name, command.of_step
        if info is None:
            return CompensationCompleted(
                step=step, name=name, of_step=of_step, result=result, attempt=attempt
            )
        return CompensationFailed(
            step=step, name=name, of_step=of_step, error=info, attempt=attempt
        )
    call = call_of(scheduled)
    fp = fp or call.args_fingerprint()
    if info is None:
        return ActivityCompleted(step=step, name=call.name, fp=fp, result=result, attempt=attempt)
    return ActivityFailed(step=step, name=call.name, fp=fp, error=info, attempt=attempt)

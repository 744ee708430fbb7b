"""Failure and compensation (sagas): when a workflow fails or is cancelled, the compensations of
its completed activities run one at a time, newest first, before the final status is reported.
"""

from __future__ import annotations

from typing import Any

from .bookkeeping import Bookkeeping, Pending
from .commands import ActivityCall, Compensate
from .errors import WorkflowCancelled, WorkflowTimedOut
from .failures import error_info


class Compensation(Bookkeeping):
    """Remembers compensable results and, after a failure, issues their compensations."""

    def _remember_compensation(self, step: int, p: Pending, result: Any) -> None:
        command = p.command
        if isinstance(command, ActivityCall) and command.compensation:
            self._compensations.append((step, command, result))

    def _fail(self, exc: BaseException) -> None:
        self._abandon_all()
        self._final_status = "cancelled" if isinstance(exc, WorkflowCancelled) else "failed"
        if isinstance(exc, WorkflowTimedOut):
            self._close_children("timed out")
        else:
            self._close_children("was cancelled" if self._final_status == "cancelled" else "failed")
        self.error = error_info(exc, retryable=False)
        self._compensating = True
        self._next_compensation()

    def _next_compensation(self) -> None:
        if not self._compensations:
            self._compensating = False
            self._end(self._final_status)
            return
        of_step, call, original = self._compensations.pop()
        act = call.definition
        comp = act.compensate if act is not None else None
        comp_call: ActivityCall[Any] = ActivityCall(
            name=call.compensation or "",
            args=call.args,
            kwargs=call.kwargs,
            retry=comp.retry if comp is not None else call.retry,
            transactional=comp.transactional if comp is not None else True,
            timeout=comp.timeout if comp is not None else None,
            definition=comp,
        )
        step = self._next_step
        self._next_step += 1
        command = Compensate(call=comp_call, of_step=of_step, original_result=original)
        self._register(step, command, None, None)


__all__ = ["Compensation"]

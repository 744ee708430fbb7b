"""Lifecycle hooks: attach logging, metrics or tracing to workflows and activities.

>>> class Printer:
...     def activity_completed(self, instance_id, step, name, attempt, duration):
...         print(f"{instance_id} step {step}: {name} done in {duration:.3f}s")
>>> app = App(database="sqlite:///demo.db", hooks=[Printer()])

A hook object implements any subset of the methods of :class:`Hooks`; an exception inside a hook
is logged and never disturbs the workflow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("replaykit.runtime")


class Hooks:
    """Every hook method with its arguments (all no-ops here; subclass or duck-type)."""

    def workflow_started(self, instance_id: str, workflow: str) -> None: ...
    def workflow_resumed(self, instance_id: str, workflow: str, history_len: int) -> None: ...
    def workflow_suspended(self, instance_id: str, workflow: str) -> None:
        """The instance parked on timers/events/messages and released its worker."""

    def workflow_completed(self, instance_id: str, workflow: str) -> None: ...
    def workflow_blocked(self, instance_id: str, workflow: str, error: BaseException) -> None:
        """Replay broke (``NonDeterminismError``): the instance is ``blocked`` until a fix."""

    def workflow_failed(self, instance_id: str, workflow: str, error: Any) -> None: ...
    def workflow_cancelled(self, instance_id: str, workflow: str) -> None: ...
    def activity_started(self, instance_id: str, step: int, name: str, attempt: int) -> None: ...
    def activity_completed(
        self, instance_id: str, step: int, name: str, attempt: int, duration: float
    ) -> None: ...
    def activity_failed(
        self, instance_id: str, step: int, name: str, attempt: int, error: BaseException
    ) -> None: ...
    def activity_retried(
        self, instance_id: str, step: int, name: str, attempt: int, delay: float
    ) -> None: ...
    def compensated(self, instance_id: str, step: int, name: str, ok: bool) -> None: ...


class HookDispatcher:
    """Calls a method on every hook that has it, logging (never raising) hook errors.

    Per-step cost when nobody listens is kept near zero: each method's receivers are looked up
    once (a method a hook inherits unchanged from :class:`Hooks` is a no-op and is never called),
    and a hook with a ``listening()`` method is skipped while it returns False (LoggingHooks:
    while ``replaykit.lifecycle`` does not log INFO, no message is formatted).
    """

    def __init__(self, hooks: Sequence[Any]) -> None:
        self.hooks = tuple(hooks)
        self._receivers: dict[str, list[tuple[Any, Callable[..., Any], Any]]] = {}

    def _lookup(self, method: str) -> list[tuple[Any, Callable[..., Any], Any]]:
        found = []
        no_op = getattr(Hooks, method, None)
        for hook in self.hooks:
            fn = getattr(hook, method, None)
            if fn is None or (no_op is not None and getattr(fn, "__func__", None) is no_op):
                continue
            found.append((hook, fn, getattr(hook, "listening", None)))
        self._receivers[method] = found
        return found

    def emit(self, method: str, *args: Any) -> None:
        receivers = self._receivers.get(method)
        if receivers is None:
            receivers = self._lookup(method)
        for hook, fn, listening in receivers:
            try:
                if listening is None or listening():
                    fn(*args)
            except Exception:
                log.exception("hook %s.%s failed", type(hook).__name__, method)


class LoggingHooks(Hooks):
    """Structured log records for every lifecycle step (logger ``replaykit.lifecycle``)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.log = logger or logging.getLogger("replaykit.lifecycle")

    def listening(self) -> bool:
        """Whether the logger takes INFO records, the level of every record here (else the
        dispatcher skips this hook)."""
        return self.log.isEnabledFor(logging.INFO)

    def _info(self, msg: str, instance_id: str, workflow: str = "", step: int = 0) -> None:
        extra = {"instance_id": instance_id, "workflow": workflow, "step": step}
        self.log.info(msg, extra=extra)

    def workflow_started(self, instance_id: str, workflow: str) -> None:
        self._info(f"workflow {workflow} started", instance_id, workflow)

    def workflow_completed(self, instance_id: str, workflow: str) -> None:
        self._info(f"workflow {workflow} completed", instance_id, workflow)

    def workflow_failed(self, instance_id: str, workflow: str, error: Any) -> None:
        self._info(f"workflow {workflow} failed: {error}", instance_id, workflow)

    def workflow_blocked(self, instance_id: str, workflow: str, error: BaseException) -> None:
        self._info(f"workflow {workflow} blocked: {error}", instance_id, workflow)

    def activity_completed(
        self, instance_id: str, step: int, name: str, attempt: int, duration: float
    ) -> None:
        self._info(f"activity {name} completed in {duration:.4f}s", instance_id, step=step)

    def activity_retried(
        self, instance_id: str, step: int, name: str, attempt: int, delay: float
    ) -> None:
        self._info(
            f"activity {name} retries in {delay}s (attempt {attempt})", instance_id, step=step
        )

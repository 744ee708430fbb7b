"""What the hook dispatcher calls per step: nothing for a logger nobody reads (issue 15)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from replaykit.runtime.hooks import HookDispatcher, Hooks, LoggingHooks


class _CountingLoggingHooks(LoggingHooks):
    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger)
        self.formatted = 0

    def _info(self, msg: str, instance_id: str, workflow: str = "", step: int = 0) -> None:
        self.formatted += 1
        super()._info(msg, instance_id, workflow, step)


def test_logging_hooks_are_skipped_while_their_logger_does_not_log_info() -> None:
    logger = logging.getLogger("replaykit.test.hook_dispatch")
    logger.setLevel(logging.WARNING)
    hooks = _CountingLoggingHooks(logger)
    dispatcher = HookDispatcher([hooks])
    dispatcher.emit("workflow_started", "i-1", "wf")
    dispatcher.emit("activity_completed", "i-1", 1, "a", 1, 0.001)
    assert hooks.formatted == 0
    logger.setLevel(logging.INFO)  # the level is read at every emit, not once
    dispatcher.emit("workflow_started", "i-1", "wf")
    assert hooks.formatted == 1


def test_overridden_and_duck_typed_hook_methods_are_called_and_errors_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[tuple[str, Any]] = []

    class Sub(Hooks):
        def activity_started(self, instance_id: str, step: int, name: str, attempt: int) -> None:
            calls.append(("sub", step))

    class Duck:
        def activity_started(self, *args: Any) -> None:
            calls.append(("duck", args[1]))
            raise RuntimeError("broken hook")

    dispatcher = HookDispatcher([Sub(), Duck(), object()])
    with caplog.at_level(logging.ERROR, logger="replaykit.runtime"):
        dispatcher.emit("activity_started", "i-1", 3, "a", 1)
        dispatcher.emit("activity_started", "i-1", 4, "a", 1)
        dispatcher.emit("workflow_started", "i-1", "wf")  # Sub inherits the no-op: nothing
    assert calls == [("sub", 3), ("duck", 3), ("sub", 4), ("duck", 4)]
    assert [r.getMessage() for r in caplog.records] == ["hook Duck.activity_started failed"] * 2

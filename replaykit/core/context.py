"""What a workflow receives as ``ctx``: identity of the run and a replay-aware logger."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, MutableMapping
from typing import Any


class ReplayAwareLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger that stays quiet while the workflow replays and tags records with the instance.

    Every record carries ``instance_id``, ``workflow`` and ``step`` in its ``extra`` fields.
    """

    def __init__(self, logger: logging.Logger, ctx: WorkflowContext) -> None:
        super().__init__(logger, {})
        self._ctx = ctx

    def isEnabledFor(self, level: int) -> bool:
        return not self._ctx.is_replaying and self.logger.isEnabledFor(level)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = dict(kwargs.get("extra") or {})
        extra.setdefault("instance_id", self._ctx.instance_id)
        extra.setdefault("workflow", self._ctx.workflow)
        extra.setdefault("step", self._ctx.step)
        kwargs["extra"] = extra
        return msg, kwargs


class WorkflowContext:
    """Passed to a workflow as its first argument.

    >>> def wf(ctx):
    ...     ctx.log.info("starting %s", ctx.instance_id)   # silent during replay
    ...     yield Sleep(1)
    """

    def __init__(
        self,
        *,
        instance_id: str,
        workflow: str,
        run: int,
        parent_id: str | None,
        continued_from: str | None,
        replaying: Callable[[], bool],
        step: Callable[[], int],
    ) -> None:
        self.instance_id = instance_id
        self.workflow = workflow
        self.run = run
        self.parent_id = parent_id
        self.continued_from = continued_from
        self._replaying = replaying
        self._step = step

    @functools.cached_property
    def log(self) -> ReplayAwareLogger:
        """The logger ``replaykit.workflow.<name>``, silent while replaying."""
        return ReplayAwareLogger(logging.getLogger(f"replaykit.workflow.{self.workflow}"), self)

    @property
    def is_replaying(self) -> bool:
        """True while the code re-runs against recorded history (derived from history)."""
        return self._replaying()

    @property
    def step(self) -> int:
        """The number the next yielded command will get."""
        return self._step()

"""Structured logging through the standard :mod:`logging` module.

Every record that passes :class:`ContextFilter` carries ``instance_id``, ``workflow`` and ``step``
attributes (``None`` outside a workflow), so format strings and JSON output can always use them.
Records from replaykit's own lifecycle logger (``replaykit.lifecycle``) set them explicitly;
:class:`LogContextHooks` fills them in for records that your *sync* activities log with any
logger, and :func:`activity_logger` does so for sync and async activities alike.

>>> from replaykit.integrations.logging import LogContextHooks, configure_logging
>>> configure_logging("INFO")                          # one JSON object per line on stderr
>>> app = App("sqlite:///orders.db", workflows=[order], hooks=[LogContextHooks()])
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import OrderedDict
from contextvars import ContextVar
from typing import IO, Any

FIELDS = ("instance_id", "workflow", "step")
_current: ContextVar[dict[str, Any] | None] = ContextVar("replaykit_log_context", default=None)
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class ContextFilter(logging.Filter):
    """Gives every record ``instance_id``, ``workflow`` and ``step`` (from the current activity,
    or ``None``); values set with ``extra=`` win."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get() or {}
        for field in FIELDS:
            if not hasattr(record, field):
                setattr(record, field, context.get(field))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the context fields, any other
    ``extra=`` fields, and ``exc_info`` as text."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in FIELDS:
            data[field] = getattr(record, field, None)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in data and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


def configure_logging(
    level: int | str = "INFO", *, json_output: bool = True, stream: IO[str] | None = None
) -> logging.Handler:
    """Attach one handler to the root logger: JSON lines (or a readable text format) with the
    context fields. Returns the handler so you can remove it again."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    if json_output:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)s %(name)s [%(workflow)s %(instance_id)s step %(step)s] "
                "%(message)s"
            )
        )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    return handler


class LogContextHooks:
    """A hook object that sets the logging context while an activity runs on a worker thread.

    Async activities run on a shared event loop thread that does not see it: use
    :func:`activity_logger` there.
    """

    def __init__(self, max_instances: int = 10_000) -> None:
        self._workflows: OrderedDict[str, str] = OrderedDict()
        self._max = max_instances

    def _remember(self, instance_id: str, workflow: str) -> None:
        self._workflows[instance_id] = workflow
        self._workflows.move_to_end(instance_id)
        while len(self._workflows) > self._max:
            self._workflows.popitem(last=False)

    def workflow_started(self, instance_id: str, workflow: str) -> None:
        self._remember(instance_id, workflow)

    def workflow_resumed(self, instance_id: str, workflow: str, history_len: int) -> None:
        self._remember(instance_id, workflow)

    def activity_started(self, instance_id: str, step: int, name: str, attempt: int) -> None:
        workflow = self._workflows.get(instance_id)
        _current.set({"instance_id": instance_id, "workflow": workflow, "step": step})

    def _clear(self, *args: Any) -> None:
        _current.set(None)

    activity_completed = _clear
    activity_failed = _clear
    compensated = _clear


def activity_logger(
    ctx: Any, logger: logging.Logger | str | None = None
) -> logging.LoggerAdapter[Any]:
    """A logger whose records carry the activity's ``instance_id``, ``workflow`` and ``step``.

    >>> @activity
    ... def charge(ctx, order_id: str) -> None:
    ...     activity_logger(ctx).info("charging %s", order_id)
    """
    base = (
        logger
        if isinstance(logger, logging.Logger)
        else logging.getLogger(logger or "replaykit.activity")
    )
    extra = {field: getattr(ctx, field, None) for field in FIELDS}
    return logging.LoggerAdapter(base, extra)


__all__ = [
    "FIELDS",
    "ContextFilter",
    "JsonFormatter",
    "LogContextHooks",
    "activity_logger",
    "configure_logging",
]

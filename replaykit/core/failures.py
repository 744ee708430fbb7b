"""Failures as data and back: :func:`error_info` records an exception in history, :func:`raise_as`
rebuilds one from the record when the workflow is told that an activity or a child failed.
"""

from __future__ import annotations

import traceback as _traceback
from collections.abc import Callable
from typing import Any

from .errors import ActivityError, NonDeterminismError, WorkflowCancelled, WorkflowTimedOut
from .history import ErrorInfo

ErrorResolver = Callable[[str], type[BaseException] | None]

#: the recorded error type of an instance whose deadline passed
TIMED_OUT = f"{WorkflowTimedOut.__module__}.{WorkflowTimedOut.__qualname__}"


def error_info(exc: BaseException, *, retryable: bool = True) -> ErrorInfo:
    """Describe ``exc`` as data (type name keeps the original class for ActivityErrors)."""
    cls = type(exc)
    type_name = getattr(exc, "type_name", None) if isinstance(exc, ActivityError) else None
    if not type_name:
        type_name = f"{cls.__module__}.{cls.__qualname__}"
    message = exc.message if isinstance(exc, ActivityError) else str(exc)
    tb = "".join(_traceback.format_exception(exc))
    return ErrorInfo(type=type_name, message=message, retryable=retryable, traceback=tb)


_combined: dict[tuple[type[BaseException], type[BaseException]], type[BaseException]] = {}


def raise_as(
    base: type[ActivityError], info: ErrorInfo, resolver: ErrorResolver, **fields: Any
) -> ActivityError:
    """An ``ActivityError`` (or subclass) that is *also* the original class, when resolvable."""
    cls = resolver(info.type)
    target: type[ActivityError] = base
    if cls is not None and not issubclass(base, cls):
        key = (base, cls)
        made = _combined.get(key)
        if made is None:
            try:
                made = type(cls.__name__, (base, cls), {"__module__": cls.__module__})
                made.__qualname__ = cls.__qualname__
            except TypeError:  # incompatible layouts: keep the plain ActivityError
                made = base
            _combined[key] = made
        target = made  # type: ignore[assignment]
    err = target.__new__(target)
    base.__init__(err, info.message, type_name=info.type, traceback=info.traceback, **fields)
    return err


def cancelled(instance_id: str, info: ErrorInfo | None) -> WorkflowCancelled:
    """What ``result()`` raises for a cancelled instance: ``reason`` is the one given to cancel;
    :class:`WorkflowTimedOut` for one whose deadline passed."""
    message = info.message if info is not None else WorkflowCancelled.DEFAULT_MESSAGE
    if info is not None and info.type == TIMED_OUT:
        return WorkflowTimedOut(f"instance {instance_id!r} timed out: {message}", reason=message)
    reason = "" if message == WorkflowCancelled.DEFAULT_MESSAGE else message
    return WorkflowCancelled(f"instance {instance_id!r} was cancelled: {message}", reason=reason)


def blocked(instance_id: str, error: Any) -> NonDeterminismError:
    """What ``result()`` raises for a ``blocked`` instance, from its stored error (builtins)."""
    found = error if isinstance(error, dict) else {}
    message = str(found.get("message", error))
    return NonDeterminismError(
        f"{message} The instance is blocked: it carries on once a fix is deployed.",
        instance_id=instance_id,
        step=int(found.get("step") or 0),
        expected=str(found.get("expected", "")),
        actual=str(found.get("actual", "")),
        location=str(found.get("location", "")),
    )


__all__ = ["TIMED_OUT", "ErrorResolver", "blocked", "cancelled", "error_info", "raise_as"]

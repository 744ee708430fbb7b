"""Checks of values that come from outside (the Python API, commands, CloudEvents, MCP).

A value that cannot work is refused here with :class:`~replaykit.InvalidInput` naming the
argument, before anything is stored, so that every database (and ``replaykit.testing``) answers
the same. The rules (docs/runtime.md, "Ids and the values replaykit accepts"):

* an **id** (an instance id, an event's ``type``, ``source`` and ``id``, a channel, workflow or
  queue name) is a ``str`` of at most :data:`MAX_ID_LENGTH` characters, without NUL and without
  lone surrogates (it must encode to UTF-8); instance ids, event types and names are also
  non-empty. Ids are compared character for character (``"a"`` and ``"a "`` are two ids) on
  every database;
* other **text** (a subject, a time) has no NUL and no lone surrogate;
* **seconds** (sleeps, timeouts, leases) are finite numbers, never negative;
* **data** stored as JSON (event data and extensions) nests at most :data:`MAX_DEPTH` levels and
  its strings and keys follow the text rule.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from .errors import InvalidInput

#: The longest id, in characters, on every database (MySQL's key columns are VARCHAR(255)).
MAX_ID_LENGTH = 255
#: The deepest nesting of event data and extensions (lists and objects) that is accepted.
MAX_DEPTH = 100


def _text_problem(value: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode text)"
    return None


def check_text(value: Any, argument: str, *, optional: bool = False) -> Any:
    """``value`` if it is a ``str`` without NUL or lone surrogates (or None when ``optional``)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidInput(
            f"{argument} must be a string, not {type(value).__name__} ({value!r})",
            argument=argument,
        )
    problem = _text_problem(value)
    if problem is not None:
        raise InvalidInput(f"{argument} {problem}: {value!r}", argument=argument)
    return value


def check_id(value: Any, argument: str = "instance_id", *, empty: bool = False) -> str:
    """``value`` if it is a valid id: text (see :func:`check_text`) of 1 (0 when ``empty``) to
    :data:`MAX_ID_LENGTH` characters."""
    check_text(value, argument)
    if not value and not empty:
        raise InvalidInput(f"{argument} must not be empty", argument=argument)
    if len(value) > MAX_ID_LENGTH:
        raise InvalidInput(
            f"{argument} is {len(value)} characters long; the limit is {MAX_ID_LENGTH}: "
            f"{value[:40]!r}...",
            argument=argument,
        )
    result: str = value
    return result


def check_seconds(
    value: Any, argument: str, *, optional: bool = False, positive: bool = False
) -> Any:
    """``value`` as a float if it is a finite number of seconds, not negative (greater than zero
    when ``positive``); None passes when ``optional``."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(
            f"{argument} must be a number of seconds, not {type(value).__name__} ({value!r})",
            argument=argument,
        )
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0 or (positive and seconds == 0):
        bound = "greater than 0" if positive else "not negative"
        raise InvalidInput(
            f"{argument} must be a finite number of seconds, {bound}; got {value!r}",
            argument=argument,
        )
    return seconds


def check_count(value: Any, argument: str, *, minimum: int = 0) -> int:
    """``value`` if it is an ``int`` (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput(
            f"{argument} must be an integer of at least {minimum}; got {value!r}",
            argument=argument,
        )
    return value


def check_json(value: Any, argument: str) -> None:
    """Raise InvalidInput unless the JSON builtins ``value`` nest at most :data:`MAX_DEPTH`
    levels and every string and key in them is valid text (see :func:`check_text`)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            problem = _text_problem(item)
            if problem is not None:
                raise InvalidInput(f"a string in {argument} {problem}", argument=argument)
        elif isinstance(item, dict | list | tuple):
            if depth >= MAX_DEPTH:
                raise InvalidInput(
                    f"{argument} nests deeper than {MAX_DEPTH} levels", argument=argument
                )
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)


class EventParts(Protocol):
    """What :func:`check_event` reads: the fields of ``EventData`` and ``StoredEvent``."""

    @property
    def type(self) -> str: ...
    @property
    def data(self) -> Any: ...
    @property
    def source(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def time(self) -> str | None: ...
    @property
    def extensions(self) -> dict[str, Any]: ...


def check_event(event: EventParts, instance_id: Any = None) -> None:
    """Raise InvalidInput unless ``event`` (its data already JSON builtins), sent to
    ``instance_id`` if given, can be stored alike on every database."""
    check_id(event.type, "type")
    check_id(event.source, "source", empty=True)
    check_id(event.id, "id", empty=True)
    check_text(event.subject, "subject", optional=True)
    check_text(event.time, "time", optional=True)
    if instance_id is not None:
        check_id(instance_id, "instance_id")
    check_json(event.data, "data")
    check_json(event.extensions, "extensions")


__all__ = [
    "MAX_DEPTH",
    "MAX_ID_LENGTH",
    "EventParts",
    "check_count",
    "check_event",
    "check_id",
    "check_json",
    "check_seconds",
    "check_text",
]

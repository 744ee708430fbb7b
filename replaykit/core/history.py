"""History events: what happened to an instance, in order. Frozen, tagged msgspec Structs.

History is kept for years, so every field added later must have a default. Events are created by
the runtime (the imperative shell) and fed to the interpreter; ``at`` is a wall-clock timestamp the
shell stamps for people and viewers; the pure core never reads it.

Every *step event* names the step it resolves and the identity of the command that step had
(``name``, ``fp``), which replay compares with what the code yields now.
"""

from __future__ import annotations

from typing import Any, Union

import msgspec

from .errors import StorageError


class ErrorInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A failure as data: the original exception's qualified type name and message."""

    type: str
    message: str
    retryable: bool = True
    traceback: str = ""

    @property
    def short_type(self) -> str:
        """The type name without its module (``PaymentDeclined``)."""
        return self.type.rsplit(".", 1)[-1]


class EventData(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An event delivered to a ``WaitEvent`` (CloudEvents attributes plus ``data``)."""

    type: str
    data: Any = None
    id: str = ""
    source: str = ""
    subject: str | None = None
    time: str | None = None
    extensions: dict[str, Any] = {}


class Message(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A channel message delivered to ``Receive``."""

    channel: str
    data: Any = None
    metadata: dict[str, str] = {}
    id: int = 0
    sender: str | None = None


class Event(msgspec.Struct, frozen=True, kw_only=True, tag=True, tag_field="e", omit_defaults=True):
    """Base of every history event."""

    at: float = 0.0


class WorkflowStarted(Event, frozen=True, kw_only=True, omit_defaults=True):
    """First event of every run."""

    workflow: str
    instance_id: str
    input: Any = None
    run: int = 1
    continued_from: str | None = None
    parent_id: str | None = None
    #: a fork's first event: the instance whose history it copied, and the step it re-runs from
    forked_from: str | None = None
    forked_step: int | None = None
    #: POSIX time by which the instance must end (``timeout=``), kept across ``Recur``
    deadline: float | None = None


class CancelRequested(Event, frozen=True, kw_only=True, omit_defaults=True):
    """Someone asked to cancel the instance; thrown into the workflow at its current yield.
    ``timed_out``: the instance's deadline passed (the workflow gets ``WorkflowTimedOut``)."""

    reason: str = ""
    timed_out: bool = False


class StepEvent(Event, frozen=True, kw_only=True, omit_defaults=True):
    """An event that resolves the command yielded at ``step``."""

    step: int
    name: str = ""
    fp: str = ""


class ActivityCompleted(StepEvent, frozen=True, kw_only=True, omit_defaults=True):
    result: Any = None
    attempt: int = 1


class ActivityFailed(StepEvent, frozen=True, kw_only=True, omit_defaults=True):
    error: ErrorInfo
    attempt: int = 1


class RetryTimerFired(StepEvent, frozen=True, kw_only=True, omit_defaults=True):
    """The durable backoff before ``attempt`` of the activity at ``step`` elapsed."""

    attempt: int


class TimerFired(StepEvent, frozen=True, kw_only=True, omit_defaults=True):
    pass


class EventReceived(StepEvent, frozen=True, kw_only=True, omit_defaults=True):
    event: EventData


class EventTimedOut(StepEvent, frozen=True, kw_only=True, omit_defaults=True):
    pass


class MessageReceived(StepEvent, frozen=True, kw_only=True, omit_defaults=True):
    message: Message


class ReceiveTimedOut(StepEvent, frozen=True, kw_only=True, omit_defaults=True):
    pass


class ChildCompleted(StepEvent, frozen=True, kw_only=True, omit_defaults=True):
    child_id: str
    result: Any = None


class ChildFailed(StepEvent, frozen=True, kw_only=True, omit_defaults=True):
    child_id: str
    error: ErrorInfo


class ValueRecorded(StepEvent, frozen=True, kw_only=True, omit_defaults=True):
    """The value of ``Now``, ``Uuid``, ``Random`` or ``SideEffect`` (``kind``) at ``step``."""

    kind: str
    value: Any = None


class EffectApplied(StepEvent, frozen=True, kw_only=True, omit_defaults=True):
    """A fire-and-forget command (``kind``: Publish, SendTo, Subscribe, Unsubscribe, StartChild
    without waiting) took effect; ``value`` is what the workflow receives (e.g. a message id)."""

    kind: str
    value: Any = None


class CompensationCompleted(StepEvent, frozen=True, kw_only=True, omit_defaults=True):
    of_step: int
    result: Any = None
    attempt: int = 1


class CompensationFailed(StepEvent, frozen=True, kw_only=True, omit_defaults=True):
    of_step: int
    error: ErrorInfo
    attempt: int = 1


HistoryEvent = Union[  # noqa: UP007 - msgspec needs a runtime Union object here
    WorkflowStarted,
    CancelRequested,
    ActivityCompleted,
    ActivityFailed,
    RetryTimerFired,
    TimerFired,
    EventReceived,
    EventTimedOut,
    MessageReceived,
    ReceiveTimedOut,
    ChildCompleted,
    ChildFailed,
    ValueRecorded,
    EffectApplied,
    CompensationCompleted,
    CompensationFailed,
]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(HistoryEvent)
_list_decoder = msgspec.json.Decoder(list[HistoryEvent])


def encode_event(event: Event) -> bytes:
    """Encode one history event to JSON bytes."""
    return _encoder.encode(event)


def decode_event(data: bytes | str) -> HistoryEvent:
    """Decode one history event; unreadable data raises :class:`StorageError`."""
    try:
        event: HistoryEvent = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise StorageError(f"history event cannot be decoded: {exc}") from exc
    return event


def encode_history(events: list[HistoryEvent]) -> bytes:
    """Encode a whole history (a JSON array), e.g. for golden files."""
    return _encoder.encode(events)


def decode_history(data: bytes | str) -> list[HistoryEvent]:
    """Decode a JSON array of history events."""
    try:
        return _list_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise StorageError(f"history cannot be decoded: {exc}") from exc

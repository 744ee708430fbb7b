"""Commands: what a workflow ``yield``s. Frozen, tagged msgspec Structs.

A workflow yields a command and receives its result::

    receipt = yield charge(order_id, 20.0)          # ActivityCall, result typed as Any
    receipt = yield from charge(order_id, 20.0)     # the same, typed as the activity's return type

Every command knows its *identity* (kind, name, argument fingerprint); replay compares the identity
of what the code yields now with what history recorded at the same step.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import msgspec

from .codec import PLAIN_TYPES, fingerprint, to_builtins
from .errors import InvalidInput
from .retry import RetryPolicy
from .validation import check_id, check_json, check_seconds

R = TypeVar("R")

ChannelMode = Literal["broadcast", "competing"]
#: what happens to a child still running when its parent's run ends (see :class:`StartChild`)
ParentClose = Literal["cancel", "abandon", "wait"]
PARENT_CLOSE_POLICIES: tuple[str, ...] = ("cancel", "abandon", "wait")
_set = msgspec.structs.force_setattr


def check_timeout(value: Any, what: str) -> float:
    """``value`` as seconds of a deadline: a finite number above 0 (else :class:`InvalidInput`
    naming ``what``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{what} must be a number of seconds, not {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidInput(f"{what} must be a finite number of seconds above 0, not {value!r}")
    return seconds


class Command(msgspec.Struct, frozen=True, kw_only=True, tag=True, tag_field="command"):
    """Base of every command."""

    def identity(self) -> tuple[str, str, str]:
        """(kind, name, fingerprint) compared on replay."""
        return (type(self).__name__, "", "")

    def describe(self) -> str:
        """A short human description, used in error messages."""
        kind, name, _ = self.identity()
        return f"{kind} {name!r}" if name else kind

    def __iter__(self) -> Generator[Command, Any, Any]:
        result = yield self
        return result


class ActivityCall(Command, Generic[R], frozen=True):
    """Run activity ``name`` with ``args``; made by calling an ``@activity`` inside a workflow."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    retry: RetryPolicy | None = None
    compensation: str | None = None
    transactional: bool = True
    timeout: float | None = None
    result_type: Any = None
    definition: Any = None

    def identity(self) -> tuple[str, str, str]:
        return ("ActivityCall", self.name, self.args_fingerprint())

    def args_fingerprint(self) -> str:
        """Fingerprint of the arguments (raises InvalidInput when they are not encodable)."""
        args: Any = self.args
        kwargs: Any = self.kwargs
        if kwargs or any(type(a) not in PLAIN_TYPES for a in args):
            what = f"arguments of activity {self.name!r}"
            args, kwargs = to_builtins((args, kwargs), what=what)
        return fingerprint(args, kwargs)  # plain arguments encode the same without conversion

    def __iter__(self) -> Generator[Command, Any, R]:
        result = yield self
        return result  # type: ignore[no-any-return]


class Sleep(Command, frozen=True):
    """Wait ``seconds`` on a durable timer; no worker is held while waiting.

    >>> Sleep(60)
    Sleep(seconds=60.0)
    """

    seconds: float

    def __post_init__(self) -> None:
        _set(self, "seconds", check_seconds(self.seconds, "Sleep seconds"))


class SleepUntil(Command, frozen=True):
    """Wait until ``until``: an aware datetime or a POSIX timestamp."""

    until: datetime | float

    def __post_init__(self) -> None:
        if isinstance(self.until, datetime):
            if self.until.tzinfo is None:
                raise ValueError("SleepUntil needs a timezone-aware datetime")
            _set(self, "until", self.until.timestamp())
        elif isinstance(self.until, bool) or not isinstance(self.until, int | float):
            raise InvalidInput(
                f"SleepUntil until must be a datetime or a timestamp, not {self.until!r}",
                argument="until",
            )
        elif not math.isfinite(self.until):
            raise InvalidInput(
                f"SleepUntil until must be finite, not {self.until!r}", argument="until"
            )
        else:
            _set(self, "until", float(self.until))

    @property
    def at(self) -> float:
        """The POSIX timestamp to wake at."""
        return float(self.until)  # type: ignore[arg-type]


class WaitEvent(Command, frozen=True):
    """Wait for an event of ``type`` (whose data contains ``match``, if given), up to ``timeout`` s.

    Events sent to this instance before it waits are kept and delivered in order. On timeout the
    workflow gets :class:`~replaykit.EventTimeout` at this ``yield``.
    """

    type: str
    timeout: float | None = None
    match: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        check_id(self.type, "WaitEvent type")
        check_seconds(self.timeout, "WaitEvent timeout", optional=True)
        check_json(self.match, "WaitEvent match")

    def identity(self) -> tuple[str, str, str]:
        return ("WaitEvent", self.type, "")


class Publish(Command, frozen=True):
    """Publish ``data`` on ``channel``, with optional string ``metadata``."""

    channel: str
    data: Any = None
    metadata: dict[str, str] = {}

    def __post_init__(self) -> None:
        check_id(self.channel, "Publish channel")

    def identity(self) -> tuple[str, str, str]:
        return ("Publish", self.channel, "")


class Subscribe(Command, frozen=True):
    """Subscribe to ``channel``: ``broadcast`` (every subscriber gets every message) or
    ``competing`` (each message goes to exactly one subscriber)."""

    channel: str
    mode: ChannelMode = "broadcast"

    def __post_init__(self) -> None:
        check_id(self.channel, "Subscribe channel")
        if self.mode not in ("broadcast", "competing"):
            raise ValueError("Subscribe mode must be 'broadcast' or 'competing'")

    def identity(self) -> tuple[str, str, str]:
        return ("Subscribe", self.channel, self.mode)


class Unsubscribe(Command, frozen=True):
    """Stop receiving messages from ``channel``."""

    channel: str

    def __post_init__(self) -> None:
        check_id(self.channel, "Unsubscribe channel")

    def identity(self) -> tuple[str, str, str]:
        return ("Unsubscribe", self.channel, "")


class Receive(Command, frozen=True):
    """Wait for the next message on ``channel`` (subscribed, or sent to this instance directly).

    The result is a :class:`~replaykit.Message`; on timeout, :class:`~replaykit.EventTimeout`.
    """

    channel: str
    timeout: float | None = None

    def __post_init__(self) -> None:
        check_id(self.channel, "Receive channel")
        check_seconds(self.timeout, "Receive timeout", optional=True)

    def identity(self) -> tuple[str, str, str]:
        return ("Receive", self.channel, "")


class SendTo(Command, frozen=True):
    """Send ``data`` on ``channel`` directly to the instance ``instance_id``."""

    instance_id: str
    channel: str
    data: Any = None
    metadata: dict[str, str] = {}

    def __post_init__(self) -> None:
        check_id(self.instance_id, "SendTo instance_id")
        check_id(self.channel, "SendTo channel")

    def identity(self) -> tuple[str, str, str]:
        return ("SendTo", self.channel, "")


class StartChild(Command, Generic[R], frozen=True):
    """Start workflow ``workflow`` as a child and (unless ``wait=False``) wait for its result.

    The child's id is ``instance_id`` or, by default, ``"<parent id>/<step>"`` (deterministic;
    ``"<parent id>@<run>/<step>"`` in the runs after a ``Recur``). With ``timeout`` (seconds),
    the child is cancelled with ``WorkflowTimedOut`` when that much time has passed since it
    started. Usually made with ``my_workflow.child(input)``.

    ``parent_close`` says what happens to the child if it is still running when the parent's
    run ends (it completes, fails, is cancelled or times out, or recurs) or stops waiting for
    it (the child lost an ``Any`` with ``cancel_losers``): ``"cancel"`` (the default) cancels
    it, and its compensations run; ``"abandon"`` lets it run on; ``"wait"`` keeps the parent's
    run from ending until the child has ended (the parent's result is kept meanwhile).
    """

    workflow: str
    input: Any = None
    instance_id: str | None = None
    wait: bool = True
    result_type: Any = None
    timeout: float | None = None
    parent_close: ParentClose = "cancel"

    def __post_init__(self) -> None:
        if self.timeout is not None:
            _set(self, "timeout", check_timeout(self.timeout, "StartChild timeout"))
        if self.parent_close not in PARENT_CLOSE_POLICIES:
            raise InvalidInput(
                f"StartChild parent_close must be one of {', '.join(PARENT_CLOSE_POLICIES)}, "
                f"not {self.parent_close!r}"
            )
        if self.instance_id is not None:
            check_id(self.instance_id, "StartChild instance_id")

    def identity(self) -> tuple[str, str, str]:
        return ("StartChild", self.workflow, "")

    def __iter__(self) -> Generator[Command, Any, R]:
        result = yield self
        return result  # type: ignore[no-any-return]


class Recur(Command, frozen=True):
    """End this run and start the next run of the same workflow with ``input`` (continue-as-new).

    ``input`` is checked as ``start_workflow`` checks one (it must fit the workflow's input
    type; None for a workflow that takes none): InvalidInput is raised at the ``yield``."""

    input: Any = None


class Now(Command, frozen=True):
    """The current time as an aware UTC datetime, recorded so that replay sees the same value."""


class Uuid(Command, frozen=True):
    """A random UUID4 string, recorded."""


class Random(Command, frozen=True):
    """A random float in [0, 1), recorded."""


class SideEffect(Command, frozen=True):
    """Run ``fn()`` once, record its (JSON-encodable) result, and replay the recorded value."""

    fn: Any
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            _set(self, "name", getattr(self.fn, "__qualname__", "side_effect"))

    def identity(self) -> tuple[str, str, str]:
        return ("SideEffect", self.name, "")


class PatchMarker(Command, frozen=True):
    """Base of :class:`Patched` and :class:`DeprecatePatch`: a point in the code named ``id``
    whose history marker (``ValueRecorded(kind="Patched", name=id)`` at its step) says that the
    instance took the patch. Not a command of its own."""

    id: str

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"{type(self).__name__} needs a non-empty string id")

    def identity(self) -> tuple[str, str, str]:
        return (type(self).__name__, self.id, "")


class Patched(PatchMarker, frozen=True):
    """Branch on a code change while old instances still run: ``if (yield Patched("charge-v2")):``.

    True for an instance that reaches this point for the first time under the code that has the
    patch (a marker is then recorded at this step); false on replay of an instance that passed
    this point under the code from before (its history has no marker here). A ``False`` consumes
    no step, so the old instances' later step numbers do not shift. The answer is decided once per
    ``id`` and run: a later ``Patched`` with the same ``id`` gives the same answer at once, so a
    change that touches several places of a workflow is one patch. See docs/versioning.md.
    """

    def __iter__(self) -> Generator[Command, Any, bool]:
        result = yield self
        return bool(result)


class DeprecatePatch(PatchMarker, frozen=True):
    """Retire the patch ``id`` once no instance runs the code from before it: replaces
    ``if (yield Patched(id)):`` and its old branch. It takes the marker of an instance that took
    the patch, consumes no step otherwise and records nothing, so instances from before and after
    replay alike. Remove it too once no stored history carries the marker."""


MEMBER_TYPES: tuple[type[Command], ...] = (
    ActivityCall,
    Sleep,
    SleepUntil,
    WaitEvent,
    Receive,
    StartChild,
)


class All(Command, frozen=True):
    """Wait for every member; the result is the list of member results, in order.

    ``All`` waits for every member even when one fails, then raises the first failure (by member
    order). With ``settled=True`` it never raises: failed members appear as exception objects.
    """

    members: Sequence[Any]  # any sequence; stored as a tuple
    settled: bool = False

    def __post_init__(self) -> None:
        _set(self, "members", tuple(self.members))

    def identity(self) -> tuple[str, str, str]:
        return ("All", "", str(len(self.members)))

    def __iter__(self) -> Generator[Command, Any, list[Any]]:
        result = yield self
        return result  # type: ignore[no-any-return]


class AnyOf(Command, frozen=True):
    """Wait for the first member to finish; the result is ``(index, value)``.

    If the first member to finish failed, its error is raised. With ``cancel_losers`` (default) the
    timers and waits of the other members are cancelled. Exported as ``replaykit.Any`` too.
    """

    members: Sequence[Any]  # any sequence; stored as a tuple
    cancel_losers: bool = True

    def __post_init__(self) -> None:
        _set(self, "members", tuple(self.members))

    def identity(self) -> tuple[str, str, str]:
        return ("Any", "", str(len(self.members)))

    def __iter__(self) -> Generator[Command, Any, tuple[int, Any]]:
        result = yield self
        return result  # type: ignore[no-any-return]


class RetryTimer(Command, frozen=True):
    """Internal: a durable timer before attempt ``attempt`` of the activity at the same step."""

    seconds: float
    attempt: int
    name: str = ""


class Compensate(Command, frozen=True):
    """Internal: run the compensation ``call`` for the activity completed at step ``of_step``."""

    call: ActivityCall[Any]
    of_step: int
    original_result: Any = None

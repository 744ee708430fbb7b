"""The exception tree of replaykit.

Every error the library raises derives from :class:`ReplayKitError` and, where one fits, from the
matching standard-library error too, so ``except TimeoutError`` keeps working::

    ReplayKitError
    ├── NonDeterminismError        replayed code yielded something history did not record
    ├── ActivityError              an activity failed for good (retries exhausted or not retryable)
    │   └── ChildWorkflowError     a child workflow failed
    ├── ActivityTimeout            (also TimeoutError) an activity attempt ran past its timeout
    ├── TerminalError              raise from an activity to stop retrying at once
    ├── WorkflowCancelled          (also CancelledError-like) the instance was cancelled
    │   └── WorkflowTimedOut       (also TimeoutError) its deadline passed (``timeout=``)
    ├── EventTimeout               (also TimeoutError) a WaitEvent/Receive timed out
    ├── WorkflowFailed             result() of an instance that failed
    ├── WorkflowNotFound           (also LookupError) no instance with that id
    ├── ScheduleNotFound           (also LookupError) no schedule with that id
    ├── UnknownWorkflow            (also LookupError) no workflow registered under that name
    ├── UnknownQueue               (also LookupError) no queue declared under that name
    ├── DuplicateQueueKey          an unfinished instance of the queue has that dedup key
    ├── InvalidInput               (also ValueError) input/result that cannot be encoded or decoded
    │   └── StepOutOfRange         (also IndexError) a fork from a step the history does not have
    ├── InvalidCommand             (also TypeError) a workflow yielded a non-command
    ├── StorageError               the database failed or holds something unreadable
    └── LeaseLost                  another worker took the instance over
"""

from __future__ import annotations

from typing import Any


class ReplayKitError(Exception):
    """Root of every error raised by replaykit."""


class NonDeterminismError(ReplayKitError):
    """Replayed workflow code does not match its recorded history.

    Carries ``instance_id``, ``step``, ``expected`` (what history recorded), ``actual`` (what the
    code yielded now) and ``location`` (``file:line`` of the offending ``yield``).
    """

    def __init__(
        self,
        message: str,
        *,
        instance_id: str = "",
        step: int = 0,
        expected: str = "",
        actual: str = "",
        location: str = "",
    ) -> None:
        super().__init__(message)
        self.instance_id = instance_id
        self.step = step
        self.expected = expected
        self.actual = actual
        self.location = location


class ActivityError(ReplayKitError):
    """An activity failed and will not be retried any more.

    ``type_name`` and ``message`` are those of the original exception and survive replay. When the
    original exception class can be resolved, the error thrown into the workflow is *also* an
    instance of that class, so ``except PaymentDeclined`` works after a restart.
    """

    def __init__(
        self,
        message: str,
        *,
        type_name: str = "Exception",
        activity: str = "",
        step: int = 0,
        attempts: int = 1,
        retryable: bool = True,
        traceback: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.type_name = type_name
        self.activity = activity
        self.step = step
        self.attempts = attempts
        self.retryable = retryable
        self.traceback = traceback

    def __str__(self) -> str:
        # An error rebuilt as (a subclass of) the original class already shows that class's name
        # in a traceback: its text is the message alone, so the type is not printed twice.
        cls = type(self)
        if f"{cls.__module__}.{cls.__qualname__}" == self.type_name:
            return self.message
        return f"{self.type_name}: {self.message}"


class ChildWorkflowError(ActivityError):
    """A child workflow started with ``StartChild`` failed."""


class ActivityTimeout(ReplayKitError, TimeoutError):
    """An activity attempt ran longer than its ``@activity(timeout=...)``.

    The attempt fails with this error and goes through the activity's retry policy like any other
    failure (``non_retryable=("ActivityTimeout",)`` stops at the first one). An async activity is
    cancelled at its timeout; a sync one is abandoned: its thread runs on, but its result is
    discarded and never recorded.
    """

    def __init__(
        self, message: str, *, activity: str = "", timeout: float = 0.0, attempt: int = 1
    ) -> None:
        super().__init__(message)
        self.activity = activity
        self.timeout = timeout
        self.attempt = attempt

    @classmethod
    def of(
        cls, activity: str, *, step: int, attempt: int, instance_id: str, timeout: float, how: str
    ) -> ActivityTimeout:
        """The error of an attempt that was ``how`` (cancelled / abandoned) at its timeout."""
        return cls(
            f"activity {activity!r} (step {step}, attempt {attempt}) of {instance_id!r} ran "
            f"past its timeout of {timeout} s and was {how}",
            activity=activity,
            timeout=timeout,
            attempt=attempt,
        )


class TerminalError(ReplayKitError):
    """Raise inside an activity to fail it at once, without further retries."""


class WorkflowCancelled(ReplayKitError):
    """Thrown into a workflow at its current ``yield`` when the instance is cancelled.

    ``reason`` is the one given to ``cancel()``; it is also the message (and so the ``message``
    of ``status().error``) unless an explicit message is given.
    """

    DEFAULT_MESSAGE = "workflow was cancelled"

    def __init__(self, message: str | None = None, *, reason: str = "") -> None:
        super().__init__(message or reason or self.DEFAULT_MESSAGE)
        self.reason = reason


class WorkflowTimedOut(WorkflowCancelled, TimeoutError):
    """The instance's deadline passed (``start_workflow(..., timeout=)``, ``wf.child(...,
    timeout=)``): thrown into the workflow at its current ``yield`` like a cancellation (its
    compensations run), and raised by ``result()`` of the instance, which ends ``cancelled``."""

    DEFAULT_MESSAGE = "its deadline passed"


class EventTimeout(ReplayKitError, TimeoutError):
    """A ``WaitEvent`` or ``Receive`` reached its timeout before anything arrived."""

    def __init__(self, message: str, *, step: int = 0, waited_for: str = "") -> None:
        super().__init__(message)
        self.step = step
        self.waited_for = waited_for


class WorkflowFailed(ReplayKitError):
    """Raised by ``result()`` for an instance that ended in failure; carries the error's data."""

    def __init__(
        self, message: str, *, instance_id: str = "", type_name: str = "", status: str = ""
    ) -> None:
        super().__init__(message)
        self.instance_id = instance_id
        self.type_name = type_name
        self.status = status


class WorkflowNotFound(ReplayKitError, LookupError):
    """No workflow instance has the given id."""


class ScheduleNotFound(ReplayKitError, LookupError):
    """No schedule has the given id."""


class UnknownWorkflow(ReplayKitError, LookupError):
    """No workflow (or activity) is registered under the given name."""


class UnknownQueue(ReplayKitError, LookupError):
    """No queue is declared under the given name (declare it with ``App.queue``)."""


class DuplicateQueueKey(ReplayKitError):
    """An instance was enqueued with a deduplication key that an unfinished (queued, pending,
    running or waiting) instance of the same queue already has; nothing was stored.

    ``instance_id`` is that existing instance, ``queue`` and ``key`` the queue and the key."""

    def __init__(self, message: str, *, queue: str, key: str, instance_id: str) -> None:
        super().__init__(message)
        self.queue = queue
        self.key = key
        self.instance_id = instance_id


class InvalidInput(ReplayKitError, ValueError):
    """A value could not be encoded to, or decoded from, its declared type, or cannot work where
    it was given (an empty or too long id, a NaN timeout); ``argument`` names the argument when
    one argument is at fault."""

    def __init__(self, message: str, *, argument: str = "") -> None:
        super().__init__(message)
        self.argument = argument


class StepOutOfRange(InvalidInput, IndexError):
    """A fork was asked from a step the instance's history does not have (``step``; the
    history's steps run from 1 to ``last_step``, and ``last_step + 1`` means its end)."""

    def __init__(
        self, message: str, *, instance_id: str = "", step: int = 0, last_step: int = 0
    ) -> None:
        super().__init__(message)
        self.instance_id = instance_id
        self.step = step
        self.last_step = last_step


class InvalidCommand(ReplayKitError, TypeError):
    """A workflow yielded something that is not a replaykit command."""


class StorageError(ReplayKitError):
    """The database failed, or holds data that cannot be read."""


class LeaseLost(ReplayKitError):
    """This worker's lease on an instance expired and another worker took it over."""

    def __init__(self, message: str, *, instance_id: str = "", owner: str = "") -> None:
        super().__init__(message)
        self.instance_id = instance_id
        self.owner = owner


def describe(exc: BaseException) -> dict[str, Any]:
    """Return the data that identifies ``exc`` (used when recording failures)."""
    cls = type(exc)
    return {"type": f"{cls.__module__}.{cls.__qualname__}", "message": str(exc)}

"""replaykit: durable execution for Python, in your process, with state in your database.

>>> from replaykit import workflow, activity, Sleep
>>> @activity
... def hello(ctx, name: str) -> str:
...     return f"hello {name}"
>>> @workflow
... def greet(ctx, name: str):
...     text = yield hello(name)
...     yield Sleep(60)
...     return text
"""

from .core.commands import (
    ActivityCall,
    All,
    AnyOf,
    Command,
    DeprecatePatch,
    Now,
    Patched,
    Publish,
    Random,
    Receive,
    Recur,
    SendTo,
    SideEffect,
    Sleep,
    SleepUntil,
    StartChild,
    Subscribe,
    Unsubscribe,
    Uuid,
    WaitEvent,
)
from .core.context import WorkflowContext
from .core.decisions import Decision, ScheduledCommand
from .core.definitions import (
    Activity,
    ActivityContext,
    Registry,
    Workflow,
    activity,
    register_error,
    workflow,
)
from .core.errors import (
    ActivityError,
    ActivityTimeout,
    ChildWorkflowError,
    DuplicateQueueKey,
    EventTimeout,
    InvalidCommand,
    InvalidInput,
    LeaseLost,
    NonDeterminismError,
    ReplayKitError,
    ScheduleNotFound,
    StepOutOfRange,
    StorageError,
    TerminalError,
    UnknownQueue,
    UnknownWorkflow,
    WorkflowCancelled,
    WorkflowFailed,
    WorkflowNotFound,
    WorkflowTimedOut,
)
from .core.history import ErrorInfo, EventData, Message
from .core.interpreter import Interpreter
from .core.queues import QueueSpec
from .core.retry import RetryPolicy
from .core.schedules import Schedule
from .runtime.app import App, WorkflowHandle

Any = AnyOf  # the design's name; AnyOf avoids shadowing typing.Any in user modules

__version__ = "0.1.0"

__all__ = [
    "Activity",
    "ActivityCall",
    "ActivityContext",
    "ActivityError",
    "ActivityTimeout",
    "All",
    "Any",
    "AnyOf",
    "App",
    "ChildWorkflowError",
    "Command",
    "Decision",
    "DeprecatePatch",
    "DuplicateQueueKey",
    "ErrorInfo",
    "EventData",
    "EventTimeout",
    "Interpreter",
    "InvalidCommand",
    "InvalidInput",
    "LeaseLost",
    "Message",
    "NonDeterminismError",
    "Now",
    "Patched",
    "Publish",
    "QueueSpec",
    "Random",
    "Receive",
    "Recur",
    "Registry",
    "ReplayKitError",
    "RetryPolicy",
    "Schedule",
    "ScheduleNotFound",
    "ScheduledCommand",
    "SendTo",
    "SideEffect",
    "Sleep",
    "SleepUntil",
    "StartChild",
    "StepOutOfRange",
    "StorageError",
    "Subscribe",
    "TerminalError",
    "UnknownQueue",
    "UnknownWorkflow",
    "Unsubscribe",
    "Uuid",
    "WaitEvent",
    "Workflow",
    "WorkflowCancelled",
    "WorkflowContext",
    "WorkflowFailed",
    "WorkflowHandle",
    "WorkflowNotFound",
    "WorkflowTimedOut",
    "activity",
    "register_error",
    "workflow",
]

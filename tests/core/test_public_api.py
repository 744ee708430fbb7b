"""The public names of replaykit are defined in one place and pinned here (h11, httpx)."""

from __future__ import annotations

import replaykit

PUBLIC = [
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


def test_all_is_pinned() -> None:
    assert replaykit.__all__ == PUBLIC


def test_every_public_name_exists() -> None:
    missing = [name for name in replaykit.__all__ if not hasattr(replaykit, name)]
    assert missing == []


def test_any_is_the_any_of_combinator() -> None:
    assert replaykit.Any is replaykit.AnyOf


def test_every_error_derives_from_the_one_root() -> None:
    errors = [getattr(replaykit, n) for n in PUBLIC if n.endswith(("Error", "Timeout"))]
    errors += [replaykit.WorkflowCancelled, replaykit.WorkflowFailed, replaykit.LeaseLost]
    errors += [replaykit.WorkflowNotFound, replaykit.UnknownWorkflow, replaykit.InvalidInput]
    assert all(issubclass(e, replaykit.ReplayKitError) for e in errors)
    assert issubclass(replaykit.EventTimeout, TimeoutError)
    assert issubclass(replaykit.InvalidInput, ValueError)
    assert issubclass(replaykit.StepOutOfRange, replaykit.InvalidInput)
    assert issubclass(replaykit.StepOutOfRange, IndexError)
    assert issubclass(replaykit.WorkflowNotFound, LookupError)

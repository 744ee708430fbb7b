"""Child workflows: waited for (completed, failed, raised in the parent as ChildWorkflowError),
started without waiting, with a chosen id, an unknown workflow, an input that does not fit, and
children inside All; the parent cancelled while its child waits."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from replaykit import (
    All,
    ChildWorkflowError,
    StartChild,
    TerminalError,
    WaitEvent,
    activity,
    workflow,
)

from ..harness import Advance, Cancel, Scenario, SendEvent, StartWorkflow


@activity(name="d_double")
def d_double(ctx: Any, n: int) -> int:
    if n < 0:
        raise TerminalError(f"cannot double {n}")
    return 2 * n


@workflow(name="d_kid")
def d_kid(ctx: Any, n: int) -> Generator[Any, Any, int]:
    doubled = yield d_double(n)
    return doubled


@workflow(name="d_waiting_kid")
def d_waiting_kid(ctx: Any) -> Generator[Any, Any, Any]:
    got = yield WaitEvent("d.kid.go")
    return got.data


@workflow(name="d_parent")
def d_parent(ctx: Any) -> Generator[Any, Any, list[Any]]:
    out: list[Any] = []
    out.append((yield d_kid.child(3)))
    try:
        yield d_kid.child(-1)
    except ChildWorkflowError as exc:
        out.append(f"child failed: {exc.type_name}")
    out.append((yield d_kid.start_child(4, instance_id="d-free-kid", parent_close="abandon")))
    try:
        yield StartChild("d_nobody", 1)
    except ChildWorkflowError as exc:
        out.append(f"unknown: {exc.type_name}")
    try:
        yield d_kid.child("not a number")
    except ChildWorkflowError as exc:
        out.append(f"bad input: {exc.type_name}")
    both = yield All([d_kid.child(5), d_double(6)])
    out.append(both)
    return out


@workflow(name="d_patient_parent")
def d_patient_parent(ctx: Any) -> Generator[Any, Any, Any]:
    got = yield d_waiting_kid.child(instance_id="d-patient-kid")
    return got


SCENARIOS = [
    Scenario(
        "children_waited_free_unknown_bad_input_and_in_all",
        workflows=(d_parent, d_kid),
        activities=(d_double,),
        script=(StartWorkflow("d_parent", "parent"),),
        expect={
            "parent": "completed",
            "parent/1": "completed",
            "parent/2": "failed",
            "d-free-kid": "completed",
        },
    ),
    Scenario(
        "child_result_after_an_event",
        workflows=(d_patient_parent, d_waiting_kid),
        script=(
            StartWorkflow("d_patient_parent", "patient"),
            SendEvent("d.kid.go", {"go": 1}, instance_id="d-patient-kid"),
        ),
        expect={"patient": "completed", "d-patient-kid": "completed"},
    ),
    Scenario(
        "parent_cancelled_while_its_child_waits",
        workflows=(d_patient_parent, d_waiting_kid),
        script=(
            StartWorkflow("d_patient_parent", "patient-c"),
            Cancel("patient-c", "no longer needed"),
            SendEvent("d.kid.go", {"go": 2}, instance_id="d-patient-kid"),
            Advance(5),
        ),
        # parent_close="cancel" (the default): cancelling the parent cancels the child
        expect={"patient-c": "cancelled", "d-patient-kid": "cancelled"},
    ),
]

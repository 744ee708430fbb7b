"""Queues and forks, driven from outside: a queue with a concurrency limit admitting by
priority then order, a dedup key refused while its instance is unfinished and free again after,
a rate limit (the script moves the clock onto the moments the limit allows the next start: the
App's driver jumps from timer to timer, not to those moments); a fork from a step of a finished
instance (its activities before the step are not run again) and of a waiting one."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from replaykit import Now, WaitEvent, activity, workflow

from ..harness import (
    Advance,
    DeclareQueue,
    Enqueue,
    Fork,
    Scenario,
    SendEvent,
    StartWorkflow,
)


@activity(name="d_stamp")
def d_stamp(ctx: Any, label: str) -> str:
    return f"stamped {label}"


@workflow(name="d_job")
def d_job(ctx: Any, label: str) -> Generator[Any, Any, list[Any]]:
    started = yield Now()
    got = yield WaitEvent("d.finish", timeout=100)
    stamped = yield d_stamp(label)
    return [started.timestamp(), got.data, stamped]


@workflow(name="d_quick")
def d_quick(ctx: Any, label: str) -> Generator[Any, Any, Any]:
    started = yield Now()
    return [label, started.timestamp()]


def _finish(instance_id: str) -> SendEvent:
    return SendEvent("d.finish", {"for": instance_id}, instance_id=instance_id)


SCENARIOS = [
    Scenario(
        "queue_concurrency_priority_and_dedup",
        workflows=(d_job,),
        activities=(d_stamp,),
        script=(
            DeclareQueue("d-q", concurrency=1),
            Enqueue("d-q", "d_job", "q-first", "first", dedup_key="k1"),
            Enqueue("d-q", "d_job", "q-low", "low"),
            Enqueue("d-q", "d_job", "q-high", "high", priority=5),
            Enqueue("d-q", "d_job", "q-dup", "dup", dedup_key="k1", duplicate=True),
            Advance(5),
            _finish("q-first"),
            Enqueue("d-q", "d_job", "q-again", "again", dedup_key="k1"),
            Advance(5),
            _finish("q-high"),
            Advance(5),
            _finish("q-low"),
            Advance(200),
        ),
        expect={
            "q-first": "completed",
            "q-high": "completed",
            "q-low": "completed",
            "q-again": "failed",
        },
    ),
    Scenario(
        "queue_rate_limit",
        workflows=(d_quick,),
        script=(
            DeclareQueue("d-rate", rate=(2, 10.0)),
            *[Enqueue("d-rate", "d_quick", f"r-{n}", f"r{n}") for n in range(5)],
            Advance(10),
            Advance(10),
        ),
        expect={f"r-{n}": "completed" for n in range(5)},
    ),
    Scenario(
        "fork_a_finished_and_a_waiting_instance",
        workflows=(d_job,),
        activities=(d_stamp,),
        script=(
            StartWorkflow("d_job", "src", "source"),
            Advance(3),
            _finish("src"),
            Fork("src", step=2, new_id="src-from-2"),
            Fork("src", step=3, new_id="src-from-3"),
            StartWorkflow("d_job", "src-w", "waiting source"),
            Fork("src-w", step=2, new_id="src-w-fork"),
            _finish("src-from-2"),
            Advance(150),
        ),
        expect={
            "src": "completed",
            "src-from-2": "completed",
            "src-from-3": "completed",
            "src-w-fork": "failed",
        },
    ),
]

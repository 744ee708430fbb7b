"""Every instance records the version of the code that started it (issue 13): the version given
to ``@workflow(version=...)``, or a hash of the workflow's source; children their own
workflow's; a Recur the version of the code that started the next run. The same in memory."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any

from replaykit import Command, Recur, WaitEvent, activity
from replaykit.core.definitions import Registry, Workflow, code_version
from replaykit.runtime.app import App
from replaykit.testing import WorkflowEnvironment


@activity(name="vs_double")
def double(ctx: Any, n: int) -> int:
    return 2 * n


def child_code(ctx: Any, n: int) -> Generator[Command, Any, int]:
    doubled: int = yield double(n)
    return doubled


CHILD: Workflow[Any, Any] = Workflow(child_code, name="vs_child")


def parent_code(ctx: Any, n: int) -> Generator[Command, Any, int]:
    if n < 3:
        yield WaitEvent("vs.next")
        yield Recur(n + 1)
    doubled: int = yield CHILD.child(n)  # in the last run only (a child's id is parent/step)
    return doubled


def test_a_version_is_a_hash_of_the_source_unless_given() -> None:
    parent = Workflow(parent_code, name="vs_parent")
    assert parent.version == code_version(parent_code) and len(parent.version) == 12
    assert Workflow(parent_code, name="vs_parent", version="2").version == "2"
    assert CHILD.version != parent.version


def test_instances_record_the_version_that_started_them(make_app: Callable[..., App]) -> None:
    parent = Workflow(parent_code, name="vs_parent", version="2024-06")
    with make_app(workflows=[parent, CHILD]) as app:
        app.start_workflow(parent, 3, instance_id="done")
        assert app.result("done", timeout=30) == 6
        assert app.status("done").version == "2024-06"
        assert app.status("done/1").version == CHILD.version
        app.start_workflow(parent, 2, instance_id="p")
        _until(lambda: app.status("p").status == "waiting")
        assert {r.instance_id: r.version for r in app.list_instances()}["p"] == "2024-06"
    newer = Workflow(parent_code, name="vs_parent", version="2024-07")
    with make_app(workflows=[newer, CHILD]) as app:  # the next deploy: a Recur takes its version
        app.send_event("vs.next", instance_id="p")
        assert app.result("p", timeout=30) == 6
        record = app.status("p")
        assert (record.run, record.version) == (2, "2024-07")
        assert app.status("done").version == "2024-06"


def test_in_memory_runs_record_the_same_versions() -> None:
    registry = Registry()
    parent = Workflow(parent_code, name="vs_parent", version="2024-06")
    for wf in (parent, CHILD):
        registry.add_workflow(wf)
    env = WorkflowEnvironment(registry=registry)
    run = env.start(parent, 2, instance_id="p")
    assert run.version == "2024-06"
    env.registry.add_workflow(newer := Workflow(parent_code, name="vs_parent", version="v2"))
    run = env.resume(newer, run.history)  # a worker of the next deploy: the version stays
    assert run.version == "2024-06"
    run.send_event("vs.next")  # its Recur starts the next run under the new code
    assert run.result() == 6
    assert run.version == "v2" and env.runs["p@2/1"].version == CHILD.version


def _until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)

"""Workflow names and queue names are stored with instances (and schedules, queues), so they
follow the id rule (``replaykit.core.validation.check_id``: 1 to 255 characters, no NUL, no lone
surrogate): a name past it is InvalidInput when it is given, before anything is stored, alike
on every database and in replaykit.testing; a name of exactly 255 characters works everywhere.
(Activity names are not: they are only stored inside history events.)"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest

from replaykit import workflow
from replaykit.core.definitions import Workflow
from replaykit.core.queues import QueueSpec
from replaykit.core.validation import MAX_ID_LENGTH
from replaykit.runtime.app import App
from replaykit.testing import WorkflowEnvironment

from .test_input_validation import refused, stored_rows

LONGEST = "n" * MAX_ID_LENGTH
BAD_NAMES = [
    pytest.param("n" * (MAX_ID_LENGTH + 1), id="too-long"),
    pytest.param("", id="empty"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\ud800", id="lone-surrogate"),
]


def tick(ctx: Any) -> Generator[Any, Any, str]:
    return "tick"
    yield  # pragma: no cover


longest_named = Workflow(tick, name=LONGEST)


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_a_workflow_name_that_is_not_an_id_is_refused_when_it_is_declared(bad: str) -> None:
    refused(lambda: workflow(name=bad)(tick), "workflow name")
    refused(lambda: Workflow(tick, name=bad), "workflow name")


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_a_queue_name_that_is_not_an_id_is_refused_before_anything_is_stored(
    make_app: Callable[..., App], bad: str
) -> None:
    app = make_app(workflows=[longest_named], workers=False)
    before = stored_rows(app)
    refused(lambda: app.queue(bad), "queue name")
    refused(lambda: QueueSpec(name=bad), "queue name")
    refused(lambda: app.enqueue(bad, longest_named, instance_id="e1"), "queue name")
    refused(lambda: app.start_workflow(longest_named, queue=bad, instance_id="e1"), "queue name")
    assert stored_rows(app) == before and app.queue_stats() == []


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_the_environment_refuses_a_queue_name_that_is_not_an_id(bad: str) -> None:
    env = WorkflowEnvironment()
    refused(lambda: env.queue(bad), "queue name")
    refused(lambda: env.enqueue(bad, longest_named, instance_id="e1"), "queue name")
    assert env.runs == {} and env.queue_stats() == []


def test_names_of_255_characters_work_on_every_database(make_app: Callable[..., App]) -> None:
    with make_app(workflows=[longest_named]) as app:
        app.queue(LONGEST, concurrency=1)
        handle = app.enqueue(LONGEST, longest_named, instance_id="q1")
        assert handle.result(timeout=10) == "tick"
        assert app.status("q1").workflow == LONGEST
        assert [q.spec.name for q in app.queue_stats()] == [LONGEST]
        assert app.schedule(longest_named, every=3600, schedule_id="s").workflow == LONGEST
        assert app.start_workflow(LONGEST, instance_id="d1").result(timeout=10) == "tick"

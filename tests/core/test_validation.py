"""Commands refuse values that cannot work when they are made, so a workflow fails the same way
in replaykit.testing and in production (issue 12, section 4)."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import pytest

from replaykit import (
    InvalidInput,
    Publish,
    Receive,
    SendTo,
    Sleep,
    SleepUntil,
    StartChild,
    Subscribe,
    Unsubscribe,
    WaitEvent,
    workflow,
)
from replaykit.core.validation import MAX_DEPTH, MAX_ID_LENGTH, check_json
from replaykit.testing import WorkflowEnvironment


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda: Sleep(math.nan), "Sleep seconds"),
        (lambda: Sleep(math.inf), "Sleep seconds"),
        (lambda: Sleep(-1), "Sleep seconds"),
        (lambda: Sleep("5"), "Sleep seconds"),
        (lambda: SleepUntil(math.nan), "until"),
        (lambda: SleepUntil(math.inf), "until"),
        (lambda: WaitEvent("paid", timeout=math.nan), "WaitEvent timeout"),
        (lambda: WaitEvent("paid", timeout=-1), "WaitEvent timeout"),
        (lambda: WaitEvent(""), "WaitEvent type"),
        (lambda: WaitEvent("t" * (MAX_ID_LENGTH + 1)), "WaitEvent type"),
        (lambda: Receive("ch", timeout=math.inf), "Receive timeout"),
        (lambda: SendTo("", "ch"), "SendTo instance_id"),
        (lambda: SendTo("a\x00", "ch"), "SendTo instance_id"),
        (lambda: StartChild("wf", instance_id=""), "StartChild instance_id"),
        (lambda: StartChild("wf", instance_id=7), "StartChild instance_id"),
    ],
)
def test_commands_refuse_values_that_cannot_work_when_made(
    make: Callable[[], Any], argument: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        make()
    assert info.value.argument == argument


def test_valid_commands_keep_their_values() -> None:
    assert Sleep(0).seconds == 0.0
    assert WaitEvent("paid", timeout=30).timeout == 30
    assert StartChild("wf", instance_id="c1").instance_id == "c1"


def test_event_data_nesting_is_limited() -> None:
    data: Any = 1
    for _ in range(MAX_DEPTH):
        data = {"k": data}
    check_json(data, "data")  # MAX_DEPTH levels of objects and lists
    with pytest.raises(InvalidInput, match="deeper"):
        check_json([data], "data")


@workflow(name="tv_waits")
def waits(ctx: Any) -> Generator[Any, Any, Any]:
    yield WaitEvent("paid")


@workflow(name="tv_child")
def child(ctx: Any) -> Generator[Any, Any, Any]:
    return "done"
    yield  # pragma: no cover


@workflow(name="tv_parent")
def parent(ctx: Any) -> Generator[Any, Any, Any]:
    try:
        yield StartChild("tv_child")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "started"


def test_testing_environment_refuses_what_the_app_refuses() -> None:
    env = WorkflowEnvironment()
    with pytest.raises(InvalidInput) as info:
        env.start(waits, instance_id="")
    assert info.value.argument == "instance_id"
    env.start(waits, instance_id="w1")
    for attrs, argument in [
        ({"type": None}, "type"),
        ({"type": "paid", "data": "\x00"}, "data"),
        ({"type": "paid", "instance_id": "x" * 300}, "instance_id"),
    ]:
        with pytest.raises(InvalidInput) as info:
            env.send_event(**attrs)
        assert info.value.argument == argument


def test_a_child_id_past_the_limit_fails_the_child_start_not_the_worker() -> None:
    env = WorkflowEnvironment()
    result = env.run(parent, instance_id="p" * MAX_ID_LENGTH)
    assert "child instance id" in result
    assert env.run(parent, instance_id="p") == "started"


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda: Publish("", 1), "Publish channel"),
        (lambda: Subscribe("c\x00"), "Subscribe channel"),
        (lambda: Unsubscribe("c" * (MAX_ID_LENGTH + 1)), "Unsubscribe channel"),
        (lambda: Receive(""), "Receive channel"),
        (lambda: SendTo("i", ""), "SendTo channel"),
        (lambda: WaitEvent("paid", match={"order": "a\x00"}), "WaitEvent match"),
    ],
)
def test_channel_names_and_matches_follow_the_id_and_text_rules(
    make: Callable[[], Any], argument: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        make()
    assert info.value.argument == argument


def test_testing_environment_refuses_bad_channels_like_the_app() -> None:
    env = WorkflowEnvironment()
    with pytest.raises(InvalidInput) as info:
        env.publish("", 1)
    assert info.value.argument == "channel"
    with pytest.raises(InvalidInput) as info:
        env.send_message("", "ch", 1)
    assert info.value.argument == "instance_id"

"""Values that cannot work are refused with InvalidInput naming the argument, before anything is
stored, alike on every database (issue 12, section 4)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
from typing import Any

import pytest

from replaykit import InvalidInput, WaitEvent, workflow
from replaykit.core.validation import MAX_ID_LENGTH
from replaykit.runtime.app import App

TABLES = ("rk_instances", "rk_history", "rk_events", "rk_inbox", "rk_waits", "rk_timers")


@workflow
def waiter(ctx: Any, order: str) -> Generator[Any, Any, Any]:
    event = yield WaitEvent("paid")
    return event.data


@workflow
def nul_match(ctx: Any) -> Generator[Any, Any, Any]:
    yield WaitEvent("paid", match={"order": "\x00"})


def stored_rows(app: App) -> dict[str, int]:
    """How many rows each table holds (through the adapter's own transaction helper)."""

    def count(tx: Any) -> dict[str, int]:
        return {t: int(tx.one(f"SELECT COUNT(*) AS n FROM {t}")["n"]) for t in TABLES}

    result: dict[str, int] = app.storage._read(count)  # type: ignore[attr-defined]
    return result


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def refused(call: Callable[[], Any], argument: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        call()
    assert info.value.argument == argument, info.value
    assert argument.split()[-1] in str(info.value)
    return info.value


BAD_IDS = [
    pytest.param("", id="empty"),
    pytest.param(123, id="int"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\ud800", id="lone-surrogate"),
    pytest.param("x" * (MAX_ID_LENGTH + 1), id="too-long"),
]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_start_workflow_refuses_an_invalid_instance_id_and_stores_nothing(
    make_app: Callable[..., App], bad: Any
) -> None:
    app = make_app(workflows=[waiter], workers=False)
    before = stored_rows(app)
    refused(lambda: app.start_workflow(waiter, "o", instance_id=bad), "instance_id")
    assert stored_rows(app) == before


@pytest.mark.parametrize("bad", BAD_IDS)
def test_client_calls_refuse_an_invalid_instance_id(make_app: Callable[..., App], bad: Any) -> None:
    app = make_app(workflows=[waiter], workers=False)
    for call in (
        lambda: app.status(bad),
        lambda: app.get_instance(bad),
        lambda: app.result(bad, timeout=0),
        lambda: app.cancel(bad),
        lambda: app.send_message(bad, "ch", 1),
        lambda: app.history(bad),
        lambda: app.send_event("paid", 1, instance_id=bad),
    ):
        refused(call, "instance_id")


def test_an_id_of_the_longest_length_works_on_every_database(make_app: Callable[..., App]) -> None:
    app = make_app(workflows=[waiter], workers=False)
    longest = "é" * (MAX_ID_LENGTH - 1) + "😀"  # multi-byte characters count as one each
    handle = app.start_workflow(waiter, "o", instance_id=longest)
    assert app.status(handle.instance_id).instance_id == longest
    assert app.send_event("paid", {"x": 1}, instance_id=longest, source=longest, id=longest)


@pytest.mark.parametrize(
    ("attrs", "argument"),
    [
        pytest.param({"type": None}, "type", id="type-none"),
        pytest.param({"type": ""}, "type", id="type-empty"),
        pytest.param({"type": "a\x00"}, "type", id="type-nul"),
        pytest.param({"type": "t" * (MAX_ID_LENGTH + 1)}, "type", id="type-long"),
        pytest.param({"source": None}, "source", id="source-none"),
        pytest.param({"source": "s\x00"}, "source", id="source-nul"),
        pytest.param({"id": "i\x00"}, "id", id="id-nul"),
        pytest.param({"id": "i" * (MAX_ID_LENGTH + 1)}, "id", id="id-long"),
        pytest.param({"subject": "s\x00"}, "subject", id="subject-nul"),
        pytest.param({"data": {"k": "v\x00"}}, "data", id="data-nul"),
        pytest.param({"data": {"k\x00": 1}}, "data", id="data-key-nul"),
        pytest.param({"data": ["\udc80"]}, "data", id="data-surrogate"),
        pytest.param({"extensions": {"e": "\x00"}}, "extensions", id="extensions-nul"),
    ],
)
@pytest.mark.parametrize("targeted", [False, True], ids=["broadcast", "targeted"])
def test_send_event_refuses_parts_that_cannot_be_stored_and_stores_nothing(
    make_app: Callable[..., App], attrs: dict[str, Any], argument: str, targeted: bool
) -> None:
    app = make_app(workflows=[waiter])
    app.start()
    app.start_workflow(waiter, "o", instance_id="w1")
    wait_until(lambda: app.status("w1").status == "waiting")
    before = stored_rows(app)
    kwargs: dict[str, Any] = {"type": "paid", "data": {"k": "v"}, **attrs}
    if targeted:
        kwargs["instance_id"] = "w1"
    refused(lambda: app.send_event(**kwargs), argument)
    assert stored_rows(app) == before


def test_deeply_nested_event_data_is_refused(make_app: Callable[..., App]) -> None:
    app = make_app(workers=False)
    data: Any = 1
    for _ in range(150):
        data = [data]
    refused(lambda: app.send_event("paid", data), "data")


@pytest.mark.parametrize("timeout", [math.nan, math.inf, -1.0, "1"])
def test_result_refuses_a_timeout_that_cannot_work(
    make_app: Callable[..., App], timeout: Any
) -> None:
    app = make_app(workflows=[waiter], workers=False)
    app.start_workflow(waiter, "o", instance_id="r1")
    refused(lambda: app.result("r1", timeout=timeout), "timeout")


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"limit": -1}, "limit"),
        ({"offset": -5}, "offset"),
        ({"limit": 1.5}, "limit"),
        ({"limit": True}, "limit"),
        ({"status": 3}, "status"),
        ({"created_after": math.nan}, "created_after"),
    ],
)
def test_list_instances_refuses_bad_paging_alike_on_every_database(
    make_app: Callable[..., App], kwargs: dict[str, Any], argument: str
) -> None:
    app = make_app(workers=False)
    refused(lambda: app.list_instances(**kwargs), argument)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"lease_seconds": -1}, "lease_seconds"),
        ({"lease_seconds": math.nan}, "lease_seconds"),
        ({"lease_seconds": 0}, "lease_seconds"),
        ({"poll_interval": -1}, "poll_interval"),
        ({"poll_interval": math.inf}, "poll_interval"),
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": 2.5}, "concurrency"),
    ],
)
def test_app_refuses_settings_that_cannot_work(kwargs: dict[str, Any], argument: str) -> None:
    refused(lambda: App("sqlite:///:memory:", workers=False, **kwargs), argument)


def test_ids_are_compared_character_for_character_on_every_database(
    make_app: Callable[..., App],
) -> None:
    app = make_app(workflows=[waiter], workers=False)
    for instance_id in ("a", "a ", "A", " a"):
        app.start_workflow(waiter, instance_id, instance_id=instance_id)
    assert sorted(r.instance_id for r in app.list_instances()) == [" a", "A", "a", "a "]
    for instance_id in ("a", "a "):
        assert app.status(instance_id).instance_id == instance_id
        assert app.history(instance_id)[0].input == instance_id  # type: ignore[attr-defined]
    # an event's (source, id) is its identity, byte for byte too
    assert app.send_event("paid", 1, source="s", id="e1")
    assert app.send_event("paid", 1, source="s", id="e1 ")
    assert app.send_event("paid", 1, source="s ", id="e1")
    assert not app.send_event("paid", 1, source="s", id="e1")


@pytest.mark.parametrize("channel", ["", "c\x00", "c" * (MAX_ID_LENGTH + 1), 5])
def test_publish_refuses_a_channel_name_that_is_not_an_id(
    make_app: Callable[..., App], channel: Any
) -> None:
    app = make_app(workflows=[waiter], workers=False)
    app.start_workflow(waiter, "o", instance_id="m1")
    refused(lambda: app.publish(channel, 1), "channel")
    refused(lambda: app.send_message("m1", channel, 1), "channel")


def test_a_waitevent_match_with_nul_fails_the_workflow_not_the_database(
    make_app: Callable[..., App],
) -> None:
    app = make_app(workflows=[nul_match]).start()
    app.start_workflow(nul_match, instance_id="nm")
    with pytest.raises(Exception, match="WaitEvent match"):
        app.result("nm", timeout=10)


@pytest.mark.parametrize("bad", BAD_IDS)
def test_fork_refuses_an_invalid_new_id_and_stores_nothing(
    make_app: Callable[..., App], bad: Any
) -> None:
    app = make_app(workflows=[waiter], workers=False)
    app.start_workflow(waiter, "o", instance_id="f1")
    before = stored_rows(app)
    refused(lambda: app.fork("f1", step=1, new_id=bad), "new_id")
    assert stored_rows(app) == before

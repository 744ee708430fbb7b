"""Channels end to end: broadcast and competing subscribers, messages from workflows and from
outside (``app.publish``, ``app.send_to``) with metadata, ``Receive`` timeouts, ``Unsubscribe``;
and the same across several worker processes, one of them SIGKILLed mid-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from replaykit import EventTimeout, Publish, Receive, SendTo, Subscribe, Unsubscribe, workflow
from replaykit.core.definitions import Registry
from replaykit.core.history import EffectApplied
from replaykit.runtime.app import App

from . import channel_worker
from .channel_worker import Spec, subscriber
from .conftest import MakeApp

ROOT = Path(__file__).resolve().parents[2]


@workflow
def publisher(ctx: Any, channel: str):  # type: ignore[no-untyped-def]
    yield Publish(channel, {"from": "workflow"}, metadata={"via": "Publish"})
    return "sent"


@workflow
def direct_sender(ctx: Any, target: str):  # type: ignore[no-untyped-def]
    yield SendTo(target, "inbox", {"hello": ctx.instance_id}, metadata={"via": "SendTo"})
    return "sent"


@workflow
def inbox(ctx: Any):  # type: ignore[no-untyped-def]
    message = yield Receive("inbox", timeout=30)
    return [message.data, message.metadata, message.sender]


@workflow
def quiet(ctx: Any):  # type: ignore[no-untyped-def]
    try:
        yield Receive("nobody-publishes-here", timeout=0.3)
    except EventTimeout as exc:
        return f"timed out: {isinstance(exc, TimeoutError)}"
    return "received"


@workflow
def unsubscriber(ctx: Any):  # type: ignore[no-untyped-def]
    yield Subscribe("news")
    first = yield Receive("news", timeout=30)
    yield Unsubscribe("news")
    yield Receive("control", timeout=30)  # the test publishes again, then says go
    try:
        late = yield Receive("news", timeout=0.5)
    except EventTimeout:
        return [first.data, "nothing after unsubscribe"]
    return [first.data, late.data]


WORKFLOWS = [publisher, direct_sender, inbox, quiet, unsubscriber, subscriber]


def wait_until(check: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def all_waiting(app: App, ids: list[str]) -> bool:
    return all(app.status(i).status == "waiting" for i in ids)


def start_subscribers(app: App, spec: Spec, n: int, prefix: str) -> list[str]:
    ids = [
        app.start_workflow(subscriber, spec, instance_id=f"{prefix}-{i}").instance_id
        for i in range(n)
    ]
    wait_until(lambda: all_waiting(app, ids), what="subscribers to subscribe")
    return ids


def test_broadcast_from_outside_and_from_a_workflow(make_app: MakeApp) -> None:
    app = make_app(workflows=WORKFLOWS).start()
    ids = start_subscribers(app, Spec("news", count=3), 3, "b")
    app.publish("news", {"n": 1}, {"via": "app"})
    app.publish("news", {"n": 2})
    assert app.start_workflow(publisher, "news").result(timeout=10) == "sent"
    expected = [
        [{"n": 1}, {"via": "app"}],
        [{"n": 2}, {}],
        [{"from": "workflow"}, {"via": "Publish"}],
    ]
    for i in ids:
        assert app.result(i, timeout=10) == expected


def test_competing_delivers_each_message_to_exactly_one(make_app: MakeApp) -> None:
    app = make_app(workflows=WORKFLOWS).start()
    ids = start_subscribers(app, Spec("jobs", mode="competing", idle_timeout=1.0), 3, "c")
    for n in range(12):
        app.publish("jobs", n, {"n": str(n)})
    results = [app.result(i, timeout=20) for i in ids]
    got = sorted(data for result in results for data, _ in result)
    assert got == list(range(12))
    assert all(meta == {"n": str(data)} for result in results for data, meta in result)


def test_competing_keeps_messages_published_before_anyone_subscribed(make_app: MakeApp) -> None:
    app = make_app(workflows=WORKFLOWS).start()
    for n in range(3):
        app.publish("backlog", n)
    handle = app.start_workflow(subscriber, Spec("backlog", mode="competing", idle_timeout=0.5))
    assert [data for data, _ in handle.result(timeout=10)] == [0, 1, 2]


def test_send_to_from_outside_and_from_a_workflow(make_app: MakeApp) -> None:
    app = make_app(workflows=WORKFLOWS).start()
    outside = app.start_workflow(inbox, instance_id="inbox-1")
    app.send_to("inbox-1", "inbox", {"hello": "app"}, {"via": "send_to"})
    assert outside.result(timeout=10) == [{"hello": "app"}, {"via": "send_to"}, None]
    inside = app.start_workflow(inbox, instance_id="inbox-2")
    app.start_workflow(direct_sender, "inbox-2", instance_id="sender")
    assert inside.result(timeout=10) == [{"hello": "sender"}, {"via": "SendTo"}, "sender"]


def test_send_to_before_the_instance_receives_is_kept(make_app: MakeApp) -> None:
    app = make_app(workflows=WORKFLOWS)
    app.start_workflow(inbox, instance_id="early")  # not running yet: no workers started
    app.send_to("early", "inbox", "kept", {"k": "v"})
    app.start()
    assert app.result("early", timeout=10) == ["kept", {"k": "v"}, None]


def test_receive_times_out(make_app: MakeApp) -> None:
    app = make_app(workflows=WORKFLOWS).start()
    assert app.start_workflow(quiet).result(timeout=10) == "timed out: True"


def test_unsubscribe_stops_delivery(make_app: MakeApp) -> None:
    app = make_app(workflows=WORKFLOWS).start()
    handle = app.start_workflow(unsubscriber, instance_id="unsub")
    wait_until(lambda: all_waiting(app, ["unsub"]), what="the subscription")
    app.publish("news", "first")

    def unsubscribed() -> bool:
        return any(
            isinstance(e, EffectApplied) and e.kind == "Unsubscribe" for e in app.history("unsub")
        ) and all_waiting(app, ["unsub"])

    wait_until(unsubscribed, what="Unsubscribe")
    app.publish("news", "second")
    app.send_to("unsub", "control", "go")
    assert handle.result(timeout=10) == ["first", "nothing after unsubscribe"]


# ------------------------------------------------------------------ several worker processes


def spawn(url: str, stop: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, RK_STOP=str(stop), RK_LEASE="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integrations.channel_worker", url],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_worker_processes_share_channels_and_survive_sigkill(
    database_url: str, tmp_path: Path
) -> None:
    stop = tmp_path / "stop"
    client = App(
        database_url, registry=Registry(), workflows=channel_worker.WORKFLOWS, workers=False
    )
    procs = [spawn(database_url, stop) for _ in range(3)]
    messages = 30
    try:
        broadcast = start_subscribers(client, Spec("bcast", count=messages), 4, "b")
        competing = start_subscribers(
            client, Spec("jobs", mode="competing", idle_timeout=5.0), 4, "c"
        )
        for n in range(messages):
            client.publish("bcast", n, {"n": str(n)})
            client.publish("jobs", n, {"n": str(n)})
            if n == messages // 2:
                time.sleep(0.2)  # let the workers get busy, then kill one mid-way
                procs[0].send_signal(signal.SIGKILL)
                procs[0].wait()
                procs[0] = spawn(database_url, stop)
        results = {i: client.result(i, timeout=90) for i in broadcast + competing}
    finally:
        stop.touch()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        client.stop()
    expected = [[n, {"n": str(n)}] for n in range(messages)]
    for i in broadcast:
        assert results[i] == expected, f"{i} did not get every broadcast message once, in order"
    got = sorted(data for i in competing for data, _ in results[i])
    assert got == list(range(messages)), "competing messages lost or delivered twice"


@workflow
def publish_result(ctx: Any):  # type: ignore[no-untyped-def]
    published = yield Publish("unheard", "x")
    sent = yield SendTo("nobody", "inbox", "x")
    return [published, sent]


def test_publish_and_send_to_give_the_same_value_in_tests_and_in_the_runtime(
    make_app: MakeApp,
) -> None:
    from replaykit.testing import WorkflowEnvironment

    in_memory = WorkflowEnvironment().start(publish_result).run_until_idle().result()
    app = make_app(workflows=[publish_result]).start()
    assert app.start_workflow(publish_result).result(timeout=10) == in_memory == [None, None]

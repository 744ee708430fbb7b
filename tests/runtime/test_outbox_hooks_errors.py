"""Outbox delivery over real HTTP, lifecycle hooks, bad input, the CLI and the demo."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Generator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from replaykit import InvalidInput, WorkflowFailed, WorkflowNotFound, activity, workflow
from replaykit.integrations.cli import main as cli
from replaykit.runtime.app import App
from replaykit.runtime.outbox import HttpDelivery, OutboxRelay


class _Sink(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    fail_first = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        if _Sink.fail_first > 0:
            _Sink.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        _Sink.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def sink() -> Iterator[str]:
    _Sink.received = []
    _Sink.fail_first = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/events"
    server.shutdown()
    server.server_close()
    thread.join()


@activity
def ship(ctx: Any, order_id: str) -> str:
    ctx.outbox.send({"type": "order.shipped", "source": "/shop", "data": {"id": order_id}})
    return order_id


@workflow
def shipping(ctx: Any, order_id: str) -> Generator[Any, Any, str]:
    return (yield ship(order_id))


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_relay_posts_cloudevents_over_http_and_retries(
    make_app: Callable[..., App], sink: str, mode: str
) -> None:
    _Sink.fail_first = 1
    with make_app() as app:
        app.start_workflow(shipping, "o-7").result(timeout=20)
        relay = OutboxRelay(app.storage, HttpDelivery(sink, mode=mode), initial_backoff=0.0)  # type: ignore[arg-type]
        assert relay.run_once() == 0  # the endpoint answers 503 once
        assert relay.run_once() == 1
        assert relay.run_once() == 0  # delivered rows are not sent again
        relay.stop()
    headers, body = _Sink.received[0]
    if mode == "binary":
        assert headers["ce-type"] == "order.shipped" and headers["ce-source"] == "/shop"
        assert json.loads(body) == {"id": "o-7"}
    else:
        assert headers["content-type"].startswith("application/cloudevents+json")
        doc = json.loads(body)
        assert doc["type"] == "order.shipped" and doc["data"] == {"id": "o-7"}


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def workflow_started(self, instance_id: str, workflow: str) -> None:
        self.calls.append(("workflow_started", workflow))

    def activity_completed(self, instance_id: str, step: int, name: str, *rest: Any) -> None:
        self.calls.append(("activity_completed", name))

    def workflow_completed(self, instance_id: str, workflow: str) -> None:
        self.calls.append(("workflow_completed", workflow))

    def workflow_failed(self, instance_id: str, workflow: str, error: Any) -> None:
        raise RuntimeError("a broken hook must not break the workflow")


def test_hooks_see_the_lifecycle_and_a_failing_hook_is_harmless(
    make_app: Callable[..., App],
) -> None:
    recorder = Recorder()
    with make_app(hooks=[recorder]) as app:
        app.start_workflow(shipping, "o-8").result(timeout=20)
        with pytest.raises(WorkflowFailed):
            app.start_workflow(unencodable).result(timeout=20)
    assert recorder.calls[:3] == [
        ("workflow_started", "shipping"),
        ("activity_completed", "ship"),
        ("workflow_completed", "shipping"),
    ]


@workflow
def unencodable(ctx: Any) -> Generator[Any, Any, Any]:
    yield ship("x")
    return object()


def test_a_result_that_cannot_be_encoded_fails_the_instance(make_app: Callable[..., App]) -> None:
    with make_app() as app:
        handle = app.start_workflow(unencodable)
        with pytest.raises(WorkflowFailed) as info:
            handle.result(timeout=20)
        assert info.value.type_name.endswith("InvalidInput")
        assert "cannot be encoded" in str(info.value)


def test_events_and_messages_for_unknown_instances_are_rejected(
    make_app: Callable[..., App],
) -> None:
    app = make_app(workers=False)
    with pytest.raises(WorkflowNotFound):
        app.send_event("x", {}, instance_id="missing")
    with pytest.raises(WorkflowNotFound):
        app.send_message("missing", "chan", 1)
    with pytest.raises(WorkflowNotFound):
        app.cancel("missing")
    with pytest.raises(WorkflowNotFound):
        app.status("missing")
    with pytest.raises(InvalidInput):
        app.send_event("x", object())
    assert app.list_instances() == []


def test_cli_lists_shows_and_sends(
    make_app: Callable[..., App], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with make_app() as app:
        app.start_workflow(shipping, "o-9", instance_id="cli-1").result(timeout=20)
    assert cli(["--database", database_url, "list"]) == 0
    assert "cli-1" in capsys.readouterr().out
    assert cli(["--database", database_url, "--json", "show", "cli-1"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [e["e"] for e in shown["history"]] == ["WorkflowStarted", "ActivityCompleted"]
    assert cli(["--database", database_url, "show", "nope"]) == 3
    assert cli(["--database", database_url, "send-event", "t", "--data", '{"a": 1}']) == 0


def test_the_demo_runs_and_reports_ok(capsys: pytest.CaptureFixture[str]) -> None:
    from replaykit.demo import main as demo

    assert demo([]) == 0
    assert "demo finished: OK" in capsys.readouterr().out

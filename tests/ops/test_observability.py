"""Structured logging and OpenTelemetry spans from a real App."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from replaykit import activity, workflow
from replaykit.integrations.logging import (
    ContextFilter,
    JsonFormatter,
    LogContextHooks,
    activity_logger,
    configure_logging,
)
from replaykit.integrations.otel import OpenTelemetryHooks, root_span_id_for, trace_id_for
from replaykit.runtime.app import App

from .workflows import ops_app, populate, wait_for_status


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _by_instance(finished: tuple[ReadableSpan, ...], instance_id: str) -> list[ReadableSpan]:
    return [s for s in finished if s.context.trace_id == trace_id_for(instance_id)]


def test_spans_per_workflow_and_activity_share_a_trace_across_resumes(
    tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    url = f"sqlite:///{tmp_path / 'otel.db'}"
    with ops_app(url, hooks=[OpenTelemetryHooks(provider)]) as app:
        ids = populate(app)
    # a second App (another worker, after a restart) resumes the waiting instance
    with ops_app(url, hooks=[OpenTelemetryHooks(provider)]) as app:
        app.send_event("ops.paid", {"by": "visa"}, instance_id=ids["waiting"])
        app.result(ids["waiting"], timeout=30)
    finished = exporter.get_finished_spans()

    waiting = _by_instance(finished, ids["waiting"])
    names = sorted(s.name for s in waiting)
    assert names == [
        "activity ops_charge",
        "activity ops_reserve",
        "workflow ops_order",
        "workflow ops_order resumed",
    ]
    for span in waiting:  # one trace, under the instance's virtual parent span
        assert span.parent is not None and span.parent.span_id == root_span_id_for(ids["waiting"])
        assert span.attributes is not None
        assert span.attributes["replaykit.instance_id"] == ids["waiting"]

    retried = [s for s in _by_instance(finished, ids["retried"]) if s.name == "activity ops_charge"]
    assert sorted(s.attributes["replaykit.attempt"] for s in retried) == [1, 2]  # type: ignore[index]
    failed_attempt = next(s for s in retried if s.attributes["replaykit.attempt"] == 1)  # type: ignore[index]
    assert failed_attempt.status.status_code is StatusCode.ERROR
    assert failed_attempt.events[0].name == "exception"

    declined = {s.name: s for s in _by_instance(finished, ids["failed"])}
    assert declined["workflow ops_order"].status.status_code is StatusCode.ERROR
    assert "activity ops_release" in declined  # the compensation has its span
    assert declined["workflow ops_order"].attributes["replaykit.outcome"] == "failed"  # type: ignore[index]


def test_json_formatter_puts_context_on_every_record() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("rk.test.json")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("plain %s", "record")
        log.info("with context", extra={"instance_id": "i-1", "workflow": "w", "step": 3, "k": 1})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    plain, ctx, failed = (json.loads(line) for line in stream.getvalue().splitlines())
    assert plain["message"] == "plain record" and plain["instance_id"] is None
    assert {k: ctx[k] for k in ("instance_id", "workflow", "step", "k")} == {
        "instance_id": "i-1",
        "workflow": "w",
        "step": 3,
        "k": 1,
    }
    assert "ValueError: boom" in failed["exc_info"] and failed["level"] == "ERROR"


LOGGED: list[str] = []


@activity(name="obs_log_inside")
def log_inside(ctx: Any, what: str) -> str:
    logging.getLogger("rk.test.activity").info("plain logger: %s", what)
    activity_logger(ctx, "rk.test.activity").info("adapter: %s", what)
    return what


@workflow(name="obs_logged")
def logged(ctx: Any, what: str):  # type: ignore[no-untyped-def]
    result = yield log_inside(what)
    return result


def test_lifecycle_and_activity_records_carry_instance_workflow_and_step(tmp_path: Path) -> None:
    stream = io.StringIO()
    handler = configure_logging("INFO", stream=stream)
    try:
        app = App(
            f"sqlite:///{tmp_path / 'log.db'}",
            workflows=[logged],
            hooks=[LogContextHooks()],
            poll_interval=0.05,
        )
        with app:
            app.start_workflow(logged, "hello", instance_id="log-1").result(timeout=30)
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(logging.WARNING)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [r for r in records if r["instance_id"] == "log-1"]
    by_message = {r["message"]: r for r in mine}
    assert by_message["plain logger: hello"]["step"] == 1
    assert by_message["plain logger: hello"]["workflow"] == "obs_logged"
    assert by_message["adapter: hello"]["step"] == 1
    assert by_message["adapter: hello"]["workflow"] == "obs_logged"
    assert any(r["logger"] == "replaykit.lifecycle" for r in mine)
    assert all(set(r) >= {"instance_id", "workflow", "step"} for r in records)


def test_text_format_has_the_context_fields(populated: tuple[App, dict[str, str]]) -> None:
    app, _ = populated
    stream = io.StringIO()
    handler = configure_logging("INFO", json_output=False, stream=stream)
    try:
        app.start_workflow("ops_order", {"sku": "t", "amount": 1.0}, instance_id="txt-1")
        wait_for_status(app, "txt-1", "completed")
        # The worker logs "completed" after its commit is durable, so the database can say
        # completed a moment before the line is written: wait for the line, not only the status.
        line = "[ops_order txt-1 step 0] workflow ops_order completed"
        deadline = time.monotonic() + 10
        while line not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(logging.WARNING)
    assert line in stream.getvalue()

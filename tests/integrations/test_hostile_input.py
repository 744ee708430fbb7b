"""A bounded hostile-input run on every database: the CloudEvents intake, the MCP tools and the
Python API get hostile values (NUL, lone surrogates, ids past the limit, trailing spaces, deep
nesting, wrong types, NaN). No answer is a 500 (or an untyped exception), and a refused request
stores nothing (issue 12, section 4). The budget is CI-sized: a few hundred examples per run."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Generator
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import types
from mcp.shared.exceptions import MCPError
from starlette.testclient import TestClient

from replaykit import InvalidInput, WaitEvent, WorkflowNotFound, workflow
from replaykit.core.validation import MAX_ID_LENGTH
from replaykit.integrations.http import BATCH, STRUCTURED, cloudevents_app
from replaykit.integrations.mcp import WorkflowTools
from replaykit.runtime.app import App
from tests.runtime.test_input_validation import stored_rows, wait_until

BUDGET = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same examples on every run: a CI failure is reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SPECIAL_TEXT = st.sampled_from(
    [
        "",
        " ",
        "a ",
        "\x00",
        "a\x00b",
        "\ud800",
        "x\udfff",
        "x" * MAX_ID_LENGTH,
        "x" * (MAX_ID_LENGTH + 1),
        "é" * MAX_ID_LENGTH,
        "😀" * (MAX_ID_LENGTH + 1),
        "\\u0000",
        "{id}",
        "w1",
        "w1 ",
    ]
)
TEXT = st.one_of(SPECIAL_TEXT, st.text(max_size=12), st.text(st.characters(codec="utf-8")))
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
VALUE = st.one_of(JSON, st.floats(), st.integers(), TEXT)


class Stay(msgspec.Struct, forbid_unknown_fields=True):
    nights: int
    guest: str


@workflow(name="hostile_wait")
def hostile_wait(ctx: Any, who: str) -> Generator[Any, Any, Any]:
    event = yield WaitEvent("order.paid")
    return event.data


@workflow(name="hostile_book")
def hostile_book(ctx: Any, stay: Stay) -> Generator[Any, Any, Any]:
    return stay.nights
    yield  # pragma: no cover


@pytest.fixture
def hostile_app(make_app: Callable[..., App]) -> App:
    """A client App (no workers: nothing changes the rows but the requests) on a database where
    the instance ``w1`` waits for ``order.paid``."""
    runner = make_app(workflows=[hostile_wait, hostile_book]).start()
    runner.start_workflow(hostile_wait, "w", instance_id="w1")
    wait_until(lambda: runner.status("w1").status == "waiting")
    runner.stop()
    app = make_app(workflows=[hostile_wait, hostile_book], workers=False)
    app.on_event("booking.requested", hostile_book, instance_id="book-{id}-{subject}")
    return app


def deep(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


@st.composite
def hostile_event(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": draw(st.one_of(TEXT, st.just("e1"))),
        "source": draw(st.one_of(TEXT, st.just("/s"))),
        "type": draw(st.sampled_from(["order.paid", "booking.requested"]) | TEXT),
    }
    for name in draw(st.sets(st.sampled_from(["subject", "data", "replaykitinstanceid"]))):
        event[name] = draw(VALUE if name == "data" else TEXT)
    return event


@st.composite
def hostile_request(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["one", "batch", "deep"]))
    if kind == "deep":
        depth = draw(st.sampled_from([99, 100, 101, 999, 1000, 5000]))
        body = json.dumps({"specversion": "1.0", "id": "d", "source": "/s", "type": "order.paid"})
        return STRUCTURED, (body[:-1] + ', "data": ' + deep(depth) + "}").encode()
    if kind == "batch":
        events = draw(st.lists(hostile_event(), min_size=1, max_size=3))
        return BATCH, json.dumps(events).encode()
    return STRUCTURED, json.dumps(draw(hostile_event())).encode()


def test_hostile_cloudevents_never_get_a_500_and_a_refused_one_stores_nothing(
    hostile_app: App,
) -> None:
    app = hostile_app
    statuses: set[int] = set()
    with TestClient(cloudevents_app(app)) as client:

        @BUDGET
        @given(hostile_request())
        def check(request: tuple[str, bytes]) -> None:
            content_type, body = request
            before = stored_rows(app)
            r = client.post("/", content=body, headers={"content-type": content_type})
            statuses.add(r.status_code)
            assert r.status_code in (202, 400, 404), (body[:300], r.status_code, r.text)
            if r.status_code != 202:
                assert stored_rows(app) == before, (body[:300], r.text)

        check()
    assert {202, 400} <= statuses


def mcp_call(tools: WorkflowTools, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
    params = types.CallToolRequestParams(name=name, arguments=arguments)
    return asyncio.run(tools.call_tool(None, params))


def test_hostile_mcp_arguments_are_invalid_params_and_start_nothing(hostile_app: App) -> None:
    app = hostile_app
    tools = WorkflowTools(app, [hostile_book])
    stay = st.fixed_dictionaries(
        {
            "nights": st.one_of(
                st.integers(0, 30), st.sampled_from(["2", "4.0", True, 2.5]), VALUE
            ),
            "guest": st.one_of(st.just("ann"), VALUE),
        },
        optional={"extra": VALUE},
    )

    @BUDGET
    @given(
        st.sampled_from(["hostile_book_start", "hostile_book_status", "hostile_book_result"]),
        st.one_of(
            st.fixed_dictionaries({"input": stay}, optional={"instance_id": VALUE}),
            st.fixed_dictionaries(
                {}, optional={"input": stay | VALUE, "instance_id": VALUE, "wait_seconds": VALUE}
            ),
        ),
    )
    def check(tool: str, arguments: dict[str, Any]) -> None:
        before = stored_rows(app)
        try:
            result = mcp_call(tools, tool, arguments)
        except MCPError as exc:
            assert exc.code == types.INVALID_PARAMS, exc
            assert stored_rows(app) == before
            return
        if result.is_error:  # an unknown instance, say: a tool failure, nothing stored
            assert stored_rows(app) == before
        elif tool == "hostile_book_start":  # started: the input was exactly what the schema says
            msgspec.convert(arguments["input"], Stay, strict=True)

    check()


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def test_hostile_python_api_values_are_typed_errors_and_store_nothing(hostile_app: App) -> None:
    app = hostile_app

    calls: dict[str, Callable[[Any], Any]] = {
        "start_workflow": lambda v: app.start_workflow(hostile_wait, "x", instance_id=v),
        "status": lambda v: app.status(v),
        "result": lambda v: app.result("w1", timeout=min(v, 0.01) if is_number(v) else v),
        "cancel": lambda v: app.cancel("nobody", v),
        "send_event type": lambda v: app.send_event(v, {"k": 1}),
        "send_event id": lambda v: app.send_event("order.paid", 1, id=v, source="/api"),
        "send_event data": lambda v: app.send_event("other", v, instance_id="w1"),
        "send_event target": lambda v: app.send_event("order.paid", v, instance_id=v),
        "list_instances": lambda v: app.list_instances(limit=v, offset=v),
    }

    @BUDGET
    @given(st.sampled_from(sorted(calls)), VALUE)
    def check(call: str, value: Any) -> None:
        before = stored_rows(app)
        try:
            calls[call](value)
        except (InvalidInput, WorkflowNotFound) as exc:
            assert stored_rows(app) == before, (call, value, exc)
        except TimeoutError:
            assert call == "result" and math.isfinite(value) and value >= 0

    check()

"""Poison input at the CloudEvents intake is answered 400, never 500 (a sender retries a 500 for
ever), and a request answered 400 stores nothing: on every database (issue 12, section 4)."""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from typing import Any

import pytest
from starlette.testclient import TestClient

from replaykit import WaitEvent, workflow
from replaykit.core.validation import MAX_ID_LENGTH
from replaykit.integrations.http import BATCH, STRUCTURED, cloudevents_app
from replaykit.runtime.app import App
from tests.runtime.test_input_validation import stored_rows, wait_until

from .test_http import binary_headers, structured


@workflow(name="poison_wait")
def poison_wait(ctx: Any, order: Any) -> Generator[Any, Any, Any]:
    event = yield WaitEvent("order.paid")
    return event.data


@workflow(name="poison_start")
def poison_start(ctx: Any, data: Any) -> Generator[Any, Any, Any]:
    return data
    yield  # pragma: no cover


@pytest.fixture
def intake(make_app: Callable[..., App]) -> Generator[tuple[App, TestClient], None, None]:
    app = make_app(workflows=[poison_wait, poison_start]).start()
    app.start_workflow(poison_wait, "o", instance_id="w1")
    wait_until(lambda: app.status("w1").status == "waiting")
    with TestClient(cloudevents_app(app)) as client:
        yield app, client


def nested(depth: int) -> bytes:
    """JSON text of a string inside ``depth`` arrays."""
    return b"[" * depth + b'"x"' + b"]" * depth


def with_data(data: bytes) -> bytes:
    """A structured event whose data is the JSON text ``data``."""
    return structured()[:-1] + b', "data": ' + data + b"}"


NUL = "a\u0000b"
POISON = [
    pytest.param(with_data(nested(1000)), id="data-nested-1000"),
    pytest.param(with_data(nested(5000)), id="data-nested-5000"),
    pytest.param(with_data(nested(101)), id="data-nested-past-the-limit"),
    pytest.param(structured(id=NUL), id="nul-in-id"),
    pytest.param(structured(source=NUL), id="nul-in-source"),
    pytest.param(structured(type=NUL), id="nul-in-type"),
    pytest.param(structured(subject=NUL), id="nul-in-subject"),
    pytest.param(structured(data={"order": NUL}), id="nul-in-data"),
    pytest.param(structured(data={NUL: 1}), id="nul-in-data-key"),
    pytest.param(
        structured(data={"order": NUL}, replaykitinstanceid="w1"), id="nul-in-targeted-data"
    ),
    pytest.param(structured(id="i" * (MAX_ID_LENGTH + 1)), id="id-too-long"),
    pytest.param(structured(type="t" * (MAX_ID_LENGTH + 1)), id="type-too-long"),
    pytest.param(with_data(b'"\\ud800"'), id="escaped-lone-surrogate"),
]


@pytest.mark.parametrize("body", POISON)
def test_poison_structured_events_are_400_and_store_nothing(
    intake: tuple[App, TestClient], body: bytes
) -> None:
    app, client = intake
    before = stored_rows(app)
    r = client.post("/", content=body, headers={"content-type": STRUCTURED})
    assert r.status_code == 400, r.text
    assert stored_rows(app) == before


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        pytest.param({}, nested(1000), id="data-nested-1000"),
        pytest.param({"ce-replaykitinstanceid": "w1"}, b'{"o": "\\u0000"}', id="nul-targeted"),
        pytest.param({}, b'{"o": "\\u0000"}', id="nul-broadcast"),
        pytest.param({"ce-id": "i" * 300}, b"{}", id="id-too-long"),
    ],
)
def test_poison_binary_events_are_400_and_store_nothing(
    intake: tuple[App, TestClient], headers: dict[str, str], body: bytes
) -> None:
    app, client = intake
    before = stored_rows(app)
    r = client.post("/", content=body, headers=binary_headers(**headers))
    assert r.status_code == 400, r.text
    assert stored_rows(app) == before


def test_a_start_on_instance_id_past_the_limit_is_400_and_stores_nothing(
    intake: tuple[App, TestClient],
) -> None:
    app, client = intake
    app.on_event("user.signed_up", poison_start, instance_id="welcome-{id}")
    before = stored_rows(app)
    body = structured(type="user.signed_up", id="i" * (MAX_ID_LENGTH - 5), data={"u": 1})
    for _ in range(2):  # the redelivery is refused alike: nothing was stored the first time
        r = client.post("/", content=body, headers={"content-type": STRUCTURED})
        assert r.status_code == 400, r.text
        assert "StartOn" in r.json()["message"]
        assert stored_rows(app) == before


def test_a_batch_with_one_bad_member_stores_nothing(intake: tuple[App, TestClient]) -> None:
    app, client = intake
    app.on_event("user.signed_up", poison_start, instance_id="welcome-{id}")
    good = [
        json.loads(structured(type="user.signed_up", id=f"g{i}", data={"u": i})) for i in (1, 2)
    ]
    bad = json.loads(structured(type="user.signed_up", id="i" * (MAX_ID_LENGTH - 5)))
    before = stored_rows(app)
    r = client.post("/", content=json.dumps([*good, bad]).encode(), headers={"content-type": BATCH})
    assert r.status_code == 400, r.text
    assert stored_rows(app) == before
    assert app.get_instance("welcome-g1") is None


def test_a_batch_with_an_unknown_target_stores_nothing(intake: tuple[App, TestClient]) -> None:
    """The target is found missing inside the batch's one transaction, after the first member
    was written in it: the rollback leaves nothing."""
    app, client = intake
    app.on_event("user.signed_up", poison_start, instance_id="welcome-{id}")
    good = json.loads(structured(type="user.signed_up", id="g1", data={"u": 1}))
    lost = json.loads(structured(id="x", replaykitinstanceid="nobody"))
    before = stored_rows(app)
    r = client.post("/", content=json.dumps([good, lost]).encode(), headers={"content-type": BATCH})
    assert r.status_code == 404, r.text
    assert stored_rows(app) == before


def test_a_good_batch_is_stored_and_starts_its_workflows(
    intake: tuple[App, TestClient],
) -> None:
    app, client = intake
    app.on_event("user.signed_up", poison_start, instance_id="welcome-{id}")
    batch = [
        json.loads(structured(type="user.signed_up", id="g1", data={"u": 1})),
        json.loads(structured(id="p1", data={"order": "o"}, replaykitinstanceid="w1")),
    ]
    r = client.post("/", content=json.dumps(batch).encode(), headers={"content-type": BATCH})
    assert r.status_code == 202, r.text
    assert app.result("welcome-g1", timeout=10) == {"u": 1}
    assert app.result("w1", timeout=10) == {"order": "o"}
    again = client.post("/", content=json.dumps(batch).encode(), headers={"content-type": BATCH})
    assert [e["duplicate"] for e in again.json()["events"]] == [True, True]


@workflow(name="poison_tick")
def poison_tick(ctx: Any) -> Generator[Any, Any, Any]:
    return "tick"
    yield  # pragma: no cover


def test_event_data_for_a_start_on_workflow_that_takes_no_input_is_400_and_stores_nothing(
    intake: tuple[App, TestClient],
) -> None:
    app, client = intake
    app.register(poison_tick)
    app.on_event("tick", poison_tick, instance_id="tick-{id}")
    app.on_event("tock", "poison_tick", input=lambda event: None, instance_id="tock-{id}")
    before = stored_rows(app)
    for body in (
        structured(type="tick", id="t1", data={"x": 1}),
        json.dumps([json.loads(structured(type="tick", id="t1", data=0))]).encode(),
    ):
        content_type = BATCH if body.startswith(b"[") else STRUCTURED
        r = client.post("/", content=body, headers={"content-type": content_type})
        assert r.status_code == 400, r.text
        assert "'poison_tick' takes no input" in r.json()["message"]
        assert "input=lambda event: None" in r.json()["message"]
        assert stored_rows(app) == before
    headers = {"content-type": STRUCTURED}
    assert client.post("/", content=structured(type="tick", id="t2"), headers=headers).is_success
    tock = structured(type="tock", id="t3", data={"x": 1})
    assert client.post("/", content=tock, headers=headers).is_success
    assert app.result("tick-t2", timeout=10) == app.result("tock-t3", timeout=10) == "tick"

"""Property: malformed requests never get a 5xx, never store anything, never break the intake."""

from __future__ import annotations

import json
import sqlite3
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from replaykit.integrations.http import BATCH, STRUCTURED, cloudevents_app
from replaykit.runtime.app import App

from .conftest import MakeApp
from .test_http import binary_headers, structured, wait_paid

TOKEN = string.ascii_letters + string.digits + "-_"
VALUE = st.text(alphabet=string.printable.strip() + " ", max_size=30)
REQUIRED = ["specversion", "id", "source", "type"]
CONTENT_TYPES = st.one_of(
    st.sampled_from([STRUCTURED, BATCH, "application/json", "text/plain", "application/xml", ""]),
    st.text(alphabet=TOKEN + "/;=+ ", max_size=40),
)
extra_headers = st.dictionaries(
    st.text(alphabet=TOKEN, min_size=1, max_size=12).filter(
        lambda k: not k.lower().startswith("ce")
    ),
    VALUE,
    max_size=4,
)


@st.composite
def random_request(draw: st.DrawFn) -> tuple[dict[str, str], bytes]:
    """Random content type, random body, random headers (never a complete CloudEvent)."""
    headers = draw(extra_headers)
    headers["content-type"] = draw(CONTENT_TYPES)
    return headers, draw(st.binary(max_size=300))


@st.composite
def broken_structured(draw: st.DrawFn) -> tuple[dict[str, str], bytes]:
    event: dict[str, Any] = json.loads(structured(data={"order": "x"}))
    attr = draw(st.sampled_from(REQUIRED))
    how = draw(st.sampled_from(["drop", "empty", "number", "null", "version", "badext"]))
    if how == "drop":
        del event[attr]
    elif how == "empty":
        event[attr] = ""
    elif how == "number":
        event[attr] = draw(st.integers())
    elif how == "null":
        event[attr] = None
    elif how == "version":
        event["specversion"] = draw(VALUE.filter(lambda v: v != "1.0"))
    else:
        event[draw(st.text(alphabet="ABC_-!", min_size=1, max_size=5))] = "x"
    body = json.dumps(event).encode()
    if draw(st.booleans()):  # also inside a batch, at a random position
        good = json.loads(structured(id="good"))
        items = [good] * draw(st.integers(0, 3))
        items.insert(draw(st.integers(0, len(items))), event)
        return {"content-type": BATCH}, json.dumps(items).encode()
    return {"content-type": STRUCTURED}, body


@st.composite
def broken_binary(draw: st.DrawFn) -> tuple[dict[str, str], bytes]:
    headers = binary_headers()
    headers.update({f"ce-{k}": v for k, v in draw(extra_headers).items() if k.islower()})
    how = draw(st.sampled_from(["drop", "version", "badjson"]))
    if how == "drop":
        del headers[f"ce-{draw(st.sampled_from(REQUIRED))}"]
        return headers, draw(st.binary(max_size=100))
    if how == "version":
        headers["ce-specversion"] = draw(VALUE.filter(lambda v: v.strip() != "1.0"))
        return headers, b"{}"
    return headers, b"{" + draw(st.binary(max_size=50)).replace(b"}", b"")


def counts(app: App) -> tuple[int, list[tuple[str, str]]]:
    path = str(app.database).removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        events: int = conn.execute("SELECT COUNT(*) FROM rk_events").fetchone()[0]
    conn.close()
    instances = [(r.instance_id, r.status) for r in app.list_instances(limit=1000)]
    return events, instances


def test_malformed_requests_are_4xx_and_store_nothing(sqlite_app: MakeApp) -> None:
    app = sqlite_app(workflows=[wait_paid], workers=False)
    app.start_workflow(wait_paid, "x", instance_id="existing")
    before = counts(app)
    statuses: set[int] = set()

    with TestClient(cloudevents_app(app, max_body=200)) as client:

        @settings(
            max_examples=2000,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(st.one_of(random_request(), broken_structured(), broken_binary()))
        def check(request: tuple[dict[str, str], bytes]) -> None:
            headers, body = request
            response = client.post("/", content=body, headers=headers)
            assert 400 <= response.status_code < 500, (headers, body, response.text)
            assert "message" in response.json()
            statuses.add(response.status_code)

        check()
        assert counts(app) == before
        assert statuses <= {400, 404, 413}
        ok = client.post(
            "/", content=structured(data={"order": "x"}), headers={"content-type": STRUCTURED}
        )
        assert ok.status_code == 202, ok.text
    assert counts(app)[0] == before[0] + 1

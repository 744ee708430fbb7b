"""The CloudEvents intake, through httpx's ASGI transport (and once through a real uvicorn)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import msgspec
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from replaykit import EventData, WaitEvent, workflow
from replaykit.core.definitions import Registry
from replaykit.integrations.http import StartOn, cloudevents_app
from replaykit.runtime.app import App

from .conftest import MakeApp, serve_asgi

pytestmark = pytest.mark.anyio


class Signup(msgspec.Struct):
    user: str
    plan: str = "free"


@workflow
def wait_paid(ctx: Any, order: str):  # type: ignore[no-untyped-def]
    event = yield WaitEvent("order.paid", match={"order": order}, timeout=30)
    return {"data": event.data, "id": event.id, "source": event.source}


@workflow
def wait_twice(ctx: Any):  # type: ignore[no-untyped-def]
    first = yield WaitEvent("ping", timeout=30)
    try:
        yield WaitEvent("ping", timeout=0.5)
    except TimeoutError:
        return [first.id, "timeout"]
    return [first.id, "second"]


@workflow
def event_attributes(ctx: Any):  # type: ignore[no-untyped-def]
    event = yield WaitEvent("order.paid", timeout=30)
    return {"subject": event.subject, "time": event.time}


@workflow
def welcome(ctx: Any, signup: Signup):  # type: ignore[no-untyped-def]
    return f"welcome {signup.user} ({signup.plan})"
    yield  # pragma: no cover - makes this a generator


def structured(type: str = "order.paid", id: str = "e1", data: Any = None, **attrs: Any) -> bytes:
    event = {"specversion": "1.0", "id": id, "source": "/shop", "type": type, **attrs}
    if data is not None:
        event["data"] = data
    return json.dumps(event).encode()


CE_JSON = {"content-type": "application/cloudevents+json"}


def binary_headers(**extra: str) -> dict[str, str]:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "b1",
        "ce-source": "/shop",
        "ce-type": "order.paid",
        "content-type": "application/json",
    }
    headers.update(extra)
    return headers


@pytest.fixture
def app(sqlite_app: MakeApp) -> App:
    return sqlite_app(workflows=[wait_paid, wait_twice, welcome, event_attributes]).start()


@pytest.fixture
async def client(app: App) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app.asgi())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def stored_events(app: App) -> int:
    path = str(app.database).removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        count: int = conn.execute("SELECT COUNT(*) FROM rk_events").fetchone()[0]
    conn.close()
    return count


async def test_structured_event_wakes_waiting_workflow(app: App, client: httpx.AsyncClient) -> None:
    handle = await app.start_workflow_async(wait_paid, "o1")
    body = structured(data={"order": "o1", "amount": 20})
    r = await client.post("/", content=body, headers=CE_JSON)
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": True, "source": "/shop", "id": "e1", "duplicate": False}
    result = await handle.result_async(timeout=10)
    assert result == {"data": {"order": "o1", "amount": 20}, "id": "e1", "source": "/shop"}


async def test_binary_event_targets_one_instance(app: App, client: httpx.AsyncClient) -> None:
    a = await app.start_workflow_async(wait_paid, "same", instance_id="a")
    b = await app.start_workflow_async(wait_paid, "same", instance_id="b")
    headers = binary_headers(**{"ce-replaykitinstanceid": "b", "ce-subject": "order/1"})
    r = await client.post("/", content=b'{"order": "same"}', headers=headers)
    assert r.status_code == 202, r.text
    assert (await b.result_async(timeout=10))["id"] == "b1"
    assert app.status(a.instance_id).status in ("waiting", "running", "pending")


async def test_the_workflow_sees_the_cloudevents_subject_and_time(
    app: App, client: httpx.AsyncClient
) -> None:
    handle = await app.start_workflow_async(event_attributes, instance_id="attrs")
    headers = binary_headers(
        **{
            "ce-replaykitinstanceid": "attrs",
            "ce-subject": "order/1",
            "ce-time": "2026-01-01T00:00:00Z",
        }
    )
    r = await client.post("/", content=b'{"order": "x"}', headers=headers)
    assert r.status_code == 202, r.text
    result = await handle.result_async(timeout=10)
    assert result["subject"] == "order/1"
    assert result["time"] is not None and result["time"].startswith("2026-01-01T00:00:00")


async def test_batch_mode_stores_every_event(app: App, client: httpx.AsyncClient) -> None:
    handles = [await app.start_workflow_async(wait_paid, f"o{i}") for i in range(3)]
    batch = [json.loads(structured(id=f"e{i}", data={"order": f"o{i}"})) for i in range(3)]
    r = await client.post(
        "/", json=batch, headers={"content-type": "application/cloudevents-batch+json"}
    )
    assert r.status_code == 202, r.text
    assert [e["id"] for e in r.json()["events"]] == ["e0", "e1", "e2"]
    for i, h in enumerate(handles):
        assert (await h.result_async(timeout=10))["id"] == f"e{i}"


async def test_duplicate_source_and_id_is_accepted_once(
    app: App, client: httpx.AsyncClient
) -> None:
    handle = await app.start_workflow_async(wait_twice)
    for expected in (False, True):
        r = await client.post("/", content=structured(type="ping", id="p1"), headers=CE_JSON)
        assert r.status_code == 202
        assert r.json()["duplicate"] is expected
    assert await handle.result_async(timeout=10) == ["p1", "timeout"]
    assert stored_events(app) == 1


def _missing(attr: str) -> bytes:
    event = json.loads(structured())
    del event[attr]
    return json.dumps(event).encode()


REQUIRED = ("specversion", "id", "source", "type")
BATCH_CT = {"content-type": "application/cloudevents-batch+json"}
NUMERIC_ID = json.dumps({"specversion": "1.0", "id": 5, "source": "s", "type": "t"}).encode()


def _without(attr: str) -> dict[str, str]:
    return {k: v for k, v in binary_headers().items() if k != f"ce-{attr}"}


BAD_REQUESTS: list[tuple[str, dict[str, str], bytes, str]] = [
    *[(f"structured without {a}", CE_JSON, _missing(a), a) for a in REQUIRED],
    *[(f"binary without {a}", _without(a), b"{}", a) for a in REQUIRED],
    ("bad JSON", CE_JSON, b'{"specversion": "1.0", "id": ', "not valid JSON"),
    ("bad JSON data in binary mode", binary_headers(), b"{oops", "not valid JSON"),
    ("wrong content type", {"content-type": "text/plain"}, structured(), "content type"),
    ("no content type", {}, structured(), "content type"),
    ("not an object", CE_JSON, b"[1, 2]", "JSON object"),
    ("bad specversion", CE_JSON, structured(specversion="0.1"), "specversion"),
    ("numeric id", CE_JSON, NUMERIC_ID, "strings"),
    ("bad time", CE_JSON, structured(time="yesterday"), "invalid CloudEvent"),
    ("bad extension name", binary_headers(**{"ce-Bad_Name!": "x"}), b"{}", "invalid CloudEvent"),
    ("batch not a list", BATCH_CT, structured(), "array"),
    ("batch with a bad member", BATCH_CT, b'[{"id": "x"}]', "event 0"),
]


@pytest.mark.parametrize(
    ("headers", "body", "says"),
    [pytest.param(h, b, s, id=name) for name, h, b, s in BAD_REQUESTS],
)
async def test_invalid_requests_get_400_saying_why(
    app: App, client: httpx.AsyncClient, headers: dict[str, str], body: bytes, says: str
) -> None:
    r = await client.post("/", content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid"
    assert says in r.json()["message"]
    assert stored_events(app) == 0


async def test_unknown_target_instance_is_404(app: App, client: httpx.AsyncClient) -> None:
    headers = binary_headers(**{"ce-replaykitinstanceid": "nobody"})
    r = await client.post("/", content=b"{}", headers=headers)
    assert r.status_code == 404
    assert "nobody" in r.json()["message"]
    assert stored_events(app) == 0


async def test_only_post_is_allowed(client: httpx.AsyncClient) -> None:
    assert (await client.get("/")).status_code == 405


async def test_body_over_the_limit_is_413(app: App) -> None:
    transport = httpx.ASGITransport(app=cloudevents_app(app, max_body=100))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        big = structured(data={"pad": "x" * 200})
        r = await c.post("/", content=big, headers=CE_JSON)
        assert r.status_code == 413
        assert r.json()["error"] == "too_large"

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the stream is counted
            for _ in range(10):
                yield b"x" * 30

        r = await c.post("/", content=chunks(), headers=CE_JSON)
        assert r.status_code == 413
        small = await c.post("/", content=structured(), headers=CE_JSON)
        assert small.status_code == 202
    assert stored_events(app) == 1


class FailingStorage:
    """A storage whose event writes fail (a database outage)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def send_event(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("database is down")


async def test_storage_failure_is_500_and_retryable(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    broken = App(FailingStorage(app.storage), workers=False)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=broken.asgi())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        r = await c.post("/", content=structured(), headers=CE_JSON)
    assert r.status_code == 500
    assert r.json() == {
        "error": "internal",
        "message": "the event could not be stored; retry later",
    }
    assert "storing a CloudEvent failed" in caplog.text
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app.asgi()), base_url="http://test"
    ) as c:  # the retry, once the database is back
        assert (await c.post("/", content=structured(), headers=CE_JSON)).status_code == 202


async def test_handler_starts_a_workflow_once_per_event(
    app: App, client: httpx.AsyncClient
) -> None:
    app.on_event("user.signed_up", welcome, instance_id="welcome-{id}")
    body = structured(type="user.signed_up", id="u1", data={"user": "ada", "plan": "pro"})
    for _ in range(2):  # redelivery
        assert (await client.post("/", content=body, headers=CE_JSON)).status_code == 202
    assert await app.result_async("welcome-u1", timeout=10) == "welcome ada (pro)"
    assert [r.instance_id for r in app.list_instances(workflow="welcome")] == ["welcome-u1"]


async def test_handler_with_invalid_input_is_400_and_stores_nothing(
    app: App, client: httpx.AsyncClient
) -> None:
    app.on_event("user.signed_up", "welcome")
    body = structured(type="user.signed_up", data={"plan": "pro"})
    r = await client.post("/", content=body, headers=CE_JSON)
    assert r.status_code == 400
    assert "user" in r.json()["message"]
    assert stored_events(app) == 0
    assert app.list_instances(workflow="welcome") == []


async def test_handler_input_function_and_extra_handlers(app: App) -> None:
    rule = StartOn(
        "user.signed_up",
        welcome,
        input=lambda ev: Signup(user=str(ev.subject), plan="team"),
        instance_id="{subject}",
    )
    transport = httpx.ASGITransport(app=cloudevents_app(app, handlers=[rule]))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        body = structured(type="user.signed_up", subject="grace")
        assert (await c.post("/", content=body, headers=CE_JSON)).status_code == 202
    assert await app.result_async("grace", timeout=10) == "welcome grace (team)"


async def test_mounted_under_a_prefix(app: App) -> None:
    outer = Starlette(routes=[Mount("/hooks/events", app.asgi())])
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        r = await c.post("/hooks/events/", content=structured(), headers=CE_JSON)
    assert r.status_code == 202


async def test_routes_in_a_fastapi_app_answer_with_and_without_a_trailing_slash(app: App) -> None:
    from fastapi import FastAPI

    from replaykit.integrations.http import cloudevents_routes

    web = FastAPI()
    web.router.routes.extend(cloudevents_routes(app, "/events"))
    transport = httpx.ASGITransport(app=web)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        for n, path in enumerate(["/events", "/events/"]):
            r = await c.post(path, content=structured(id=f"slash-{n}"), headers=CE_JSON)
            assert r.status_code == 202, (path, r.status_code)


def test_event_data_keeps_subject_time_and_extensions(app: App) -> None:
    from replaykit.integrations.http import parse_events

    headers = binary_headers(
        **{"ce-subject": "s/1", "ce-time": "2026-01-01T00:00:00Z", "ce-traceparent": "00-ab"}
    )
    [event] = parse_events(headers, b'{"order": "o9"}')
    assert isinstance(event, EventData)
    assert event.subject == "s/1"
    assert event.time is not None and event.time.startswith("2026-01-01T00:00:00")
    assert event.extensions["traceparent"] == "00-ab"
    assert event.data == {"order": "o9"}


# ------------------------------------------------------------------------- a real server


@pytest.fixture
def served(app: App) -> Iterator[str]:
    with serve_asgi(app.asgi()) as url:
        yield url


def test_through_a_real_uvicorn_server(app: App, served: str) -> None:
    handle = app.start_workflow(wait_paid, "o7")
    with httpx.Client(base_url=served) as c:
        r = c.post("/", content=b'{"order": "o7"}', headers=binary_headers(**{"ce-id": "u7"}))
        assert r.status_code == 202, r.text
        assert c.post("/", content=b"nope", headers=CE_JSON).status_code == 400
    assert handle.result(timeout=10)["id"] == "u7"


@pytest.mark.postgres
def test_cloudevents_on_postgres(pg_schema_dsn: str) -> None:
    app = App(pg_schema_dsn, registry=Registry(), workflows=[wait_paid], poll_interval=0.05)
    with app:
        handle = app.start_workflow(wait_paid, "pg")

        async def post() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=app.asgi())
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                body = structured(id="pg1", data={"order": "pg"})
                return [await c.post("/", content=body, headers=CE_JSON) for _ in range(2)]

        first, again = asyncio.run(post())
        assert (first.status_code, again.status_code) == (202, 202)
        assert again.json()["duplicate"] is True
        assert handle.result(timeout=10)["id"] == "pg1"


def test_app_asgi_is_provided_by_the_integration_that_the_runtime_never_imports() -> None:
    import subprocess
    import sys
    import tomllib
    from importlib.metadata import entry_points
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    declared = tomllib.loads(pyproject.read_text())["project"]["entry-points"]
    assert declared["replaykit.intake"] == {
        "cloudevents": "replaykit.integrations.http:cloudevents_app"
    }
    if not list(entry_points(group="replaykit.intake")):
        pytest.skip("this environment was installed before the entry point: pip install -e .")
    script = (
        "import sys\n"
        "from replaykit.runtime.app import App\n"
        "app = App('sqlite://:memory:', workers=False)\n"
        "assert 'replaykit.integrations.http' not in sys.modules  # the runtime alone\n"
        "intake = app.asgi()  # found through the entry point group replaykit.intake\n"
        "print(type(intake).__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Starlette"

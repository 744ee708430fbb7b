"""The web viewer through Starlette's TestClient: every page, filter, paging and action."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from replaykit.integrations.viewer import viewer_app
from replaykit.integrations.viewer.server import combined_app
from replaykit.runtime.app import App

from .workflows import ops_app, wait_for_status


@pytest.fixture
def client(populated: tuple[App, dict[str, str]]) -> Iterator[TestClient]:
    app, _ = populated
    with TestClient(viewer_app(app)) as c:
        yield c


def test_list_page_shows_every_instance_with_its_status(
    client: TestClient, populated: tuple[App, dict[str, str]]
) -> None:
    _, ids = populated
    page = client.get("/")
    assert page.status_code == 200
    for instance_id in ids.values():
        assert f'/instances/{instance_id}"' in page.text
    assert 'class="badge s-failed"' in page.text and "read-only" in page.text
    assert "/actions/" not in page.text  # read-only: no forms


@pytest.mark.parametrize(
    ("query", "expected", "absent"),
    [
        ("status=failed", ["ord-declined"], ["ord-done", "tick-1"]),
        ("status=waiting", ["ord-waiting"], ["ord-declined"]),
        ("workflow=ops_ticker", ["tick-1"], ["ord-done"]),
        ("workflow=ops_order&status=completed", ["ord-done", "ord-retried"], ["tick-1"]),
        ("workflow=nothing", [], ["ord-done"]),
    ],
)
def test_list_filters(
    client: TestClient, query: str, expected: list[str], absent: list[str]
) -> None:
    page = client.get(f"/?{query}")
    assert page.status_code == 200
    for instance_id in expected:
        assert f"/instances/{instance_id}" in page.text
    for instance_id in absent:
        assert f"/instances/{instance_id}" not in page.text
    if not expected:
        assert "No instances match these filters" in page.text


def test_paging_links(client: TestClient) -> None:
    first = client.get("/?size=2")
    assert "older →" in first.text and "← newer" not in first.text
    assert 'href="?page=2&amp;size=2"' in first.text
    last = client.get("/?size=2&page=3")
    assert "← newer" in last.text and "older →" not in last.text
    assert last.text.count("/instances/") == 1
    assert client.get("/?page=abc&size=-4").status_code == 200  # bad numbers fall back


def test_instance_page_timeline_with_retry_compensation_and_traceback(
    client: TestClient, populated: tuple[App, dict[str, str]]
) -> None:
    _, ids = populated
    retried = client.get(f"/instances/{ids['retried']}").text
    assert "RetryTimerFired" in retried and "ConnectionError: payment gateway timed out" in retried
    assert 'class="bar c-retry"' in retried and " ms</td>" in retried
    failed = client.get(f"/instances/{ids['failed']}").text
    assert "CompensationCompleted" in failed and 'class="k-compensation"' in failed
    assert "<summary>traceback</summary>" in failed and "Declined" in failed
    waiting = client.get(f"/instances/{ids['waiting']}").text
    assert 'class="badge s-waiting"' in waiting


def test_recurring_instance_shows_its_run_chain(
    client: TestClient, populated: tuple[App, dict[str, str]]
) -> None:
    _, ids = populated
    current = client.get(f"/instances/{ids['recurring']}").text
    assert "Runs (Recur chain)" in current and "run 3 (current)" in current
    assert 'href="?run=1"' in current and "continued from" in current
    archived = client.get(f"/instances/{ids['recurring']}?run=1").text
    assert "Timeline — run 1 (archived)" in archived and "input 1" in archived


def test_unknown_instance_is_404(client: TestClient) -> None:
    page = client.get("/instances/nope")
    assert page.status_code == 404 and "No instance nope" in page.text


def test_actions_are_off_by_default(client: TestClient) -> None:
    assert client.post("/actions/cancel", data={"instance_id": "ord-waiting"}).status_code in (
        404,
        405,
    )
    assert client.get("/healthz").text == "ok"


def test_actions_cancel_and_send_event_when_allowed(
    populated: tuple[App, dict[str, str]],
) -> None:
    app, ids = populated
    app.start_workflow("ops_order", {"sku": "x", "amount": 1.0, "wait": True}, instance_id="v1")
    wait_for_status(app, "v1", "waiting")
    with TestClient(viewer_app(app, allow_actions=True)) as c:
        page = c.get("/instances/v1").text
        assert "Cancel instance" in page and "Send event" in page
        sent = c.post(
            "/actions/send-event",
            data={"type": "ops.paid", "data": '{"by": "cash"}', "instance_id": ids["waiting"]},
            follow_redirects=False,
        )
        assert sent.status_code == 303
        assert app.result(ids["waiting"], timeout=30)["receipt"]["by"] == "cash"
        cancelled = c.post("/actions/cancel", data={"instance_id": "v1", "reason": "ui"})
        assert cancelled.status_code == 200 and "cancel requested" in cancelled.text
        wait_for_status(app, "v1", "cancelled")
        bad = c.post("/actions/send-event", data={"type": "t", "data": "{oops"})
        assert bad.status_code == 400
        foreign = c.post(
            "/actions/cancel", data={"instance_id": "v1"}, headers={"origin": "http://evil.test"}
        )
        assert foreign.status_code == 403


def test_combined_app_mounts_the_viewer(populated: tuple[App, dict[str, str]]) -> None:
    app, _ = populated
    asgi, parts = combined_app(app)
    assert "viewer at /" in parts
    with TestClient(asgi) as c:
        assert c.get("/").status_code == 200
        assert c.get("/instances/ord-done").status_code == 200


def test_combined_app_takes_events_at_events_with_and_without_a_slash(
    populated: tuple[App, dict[str, str]],
) -> None:
    app, _ = populated
    asgi, parts = combined_app(app)
    assert "CloudEvents intake at POST /events (and /events/)" in parts
    headers = {"content-type": "application/cloudevents+json"}
    with TestClient(asgi) as c:
        for n, path in enumerate(["/events", "/events/"]):
            event = {"specversion": "1.0", "type": "ops.noise", "source": "t", "id": f"s{n}"}
            posted = c.post(path, json=event, headers=headers, follow_redirects=False)
            assert posted.status_code == 202, (path, posted.status_code, posted.text)


def _bulk_rows(n: int) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    from replaykit.core.history import WorkflowStarted, encode_event

    rows, history = [], []
    for i in range(n):
        iid = f"bulk-{i:06d}"
        status = ("completed", "failed", "waiting", "running")[i % 4]
        at = 1_700_000_000.0 + i
        rows.append((iid, "ops_order" if i % 3 else "ops_ticker", status, at, at, 1))
        started = WorkflowStarted(workflow="ops_order", instance_id=iid, input={"i": i}, at=at)
        history.append((iid, 0, encode_event(started)))
    return rows, history


INSTANCE_COLUMNS = "instance_id, workflow, status, created_at, updated_at, history_len"


def _seed(url: str, n: int) -> None:
    """Insert ``n`` instances (and their first history event) in bulk: seconds, where
    ``create_instance`` in a loop takes about a minute on SQLite."""
    rows, history = _bulk_rows(n)
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        with conn:
            conn.executemany(
                f"INSERT INTO rk_instances ({INSTANCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", rows
            )
            conn.executemany(
                "INSERT INTO rk_history (instance_id, seq, event) VALUES (?, ?, ?)", history
            )
        conn.close()
        return
    if url.startswith(("mysql", "mariadb")):
        from storage_adapters.mysql.adapter import connect_args, open_connection

        conn = open_connection(connect_args(url))
        try:
            cursor = conn.cursor()
            marks = ", ".join(["%s"] * 6)
            for start in range(0, len(rows), 5_000):
                cursor.executemany(
                    f"INSERT INTO rk_instances ({INSTANCE_COLUMNS}) VALUES ({marks})",
                    rows[start : start + 5_000],
                )
                cursor.executemany(
                    "INSERT INTO rk_history (instance_id, seq, event) VALUES (%s, %s, %s)",
                    history[start : start + 5_000],
                )
            conn.commit()
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(url) as pg, pg.cursor() as cur:
        with cur.copy(f"COPY rk_instances ({INSTANCE_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        with cur.copy("COPY rk_history (instance_id, seq, event) FROM STDIN") as copy:
            for item in history:
                copy.write_row(item)
        cur.execute("ANALYZE rk_instances")


def test_list_page_with_100000_instances(database_url: str) -> None:
    app = ops_app(database_url, workers=False)
    app.storage  # noqa: B018 - creates the schema
    started = time.perf_counter()
    _seed(database_url, 100_000)
    print(f"\n100,000 instances inserted in {time.perf_counter() - started:.2f} s")
    try:
        with TestClient(viewer_app(app)) as c:
            for path in ("/", "/?status=failed", "/?workflow=ops_ticker&page=500", "/?page=1999"):
                t0 = time.perf_counter()
                page = c.get(path)
                elapsed = time.perf_counter() - t0
                print(f"GET {path}: {elapsed * 1000:.1f} ms")
                assert page.status_code == 200
                assert elapsed < 10.0  # a smoke bound, not a benchmark
                assert "/instances/bulk-" in page.text
            first = c.get("/").text
            assert "/instances/bulk-099999" in first and "older →" in first
            assert c.get("/instances/bulk-000042").status_code == 200
    finally:
        app.stop()


def test_the_code_version_shows_in_the_list_and_on_the_instance_page(
    client: TestClient, populated: tuple[App, dict[str, str]]
) -> None:
    from .workflows import order

    _, ids = populated
    assert "<th>version</th>" in client.get("/").text
    assert f'<td class="mono">{order.version}</td>' in client.get("/").text
    page = client.get(f"/instances/{ids['completed']}").text
    assert f'<dd class="mono" id="version">{order.version}</dd>' in page


def test_an_instance_that_timed_out_shows_its_deadline_and_the_timeout(
    client: TestClient, populated: tuple[App, dict[str, str]]
) -> None:
    app, _ = populated
    order = {"sku": "kite", "amount": 4.0, "wait": True}
    app.start_workflow("ops_order", order, instance_id="viewer-late", timeout=0.3)
    wait_for_status(app, "viewer-late", "cancelled")
    page = client.get("/instances/viewer-late").text
    assert '<dt>deadline</dt><dd id="deadline">' in page
    assert "(deadline " in page and "timed out: its deadline (" in page
    assert "WorkflowTimedOut" in page


def test_the_fork_action_reruns_an_instance_from_a_step_when_allowed(
    client: TestClient, populated: tuple[App, dict[str, str]]
) -> None:
    app, ids = populated
    assert 'action="/actions/fork"' not in client.get(f"/instances/{ids['completed']}").text
    assert client.post("/actions/fork", data={"instance_id": "x", "step": "1"}).status_code in (
        404,
        405,
    )
    with TestClient(viewer_app(app, allow_actions=True)) as c:
        page = c.get(f"/instances/{ids['completed']}").text
        assert 'action="/actions/fork"' in page and "Fork: re-run from this step" in page
        form = {"instance_id": ids["completed"], "step": "2", "new_id": "ui-fork"}
        forked = c.post("/actions/fork", data=form, follow_redirects=False)
        assert forked.status_code == 303
        assert forked.headers["location"].startswith("/instances/ui-fork?flash=forked")
        assert app.result("ui-fork", timeout=30) == app.result(ids["completed"], timeout=5)
        shown = c.get("/instances/ui-fork").text
        assert f">{ids['completed']}</a> at step 2</dd>" in shown
        for bad, code in (
            ({"instance_id": ids["completed"], "step": "99"}, 400),
            ({"instance_id": ids["completed"], "step": "two"}, 400),
            ({"instance_id": "nope", "step": "1"}, 404),
            ({"instance_id": ids["completed"], "step": "1", "new_id": "ui-fork"}, 400),
        ):
            assert c.post("/actions/fork", data=bad).status_code == code, bad

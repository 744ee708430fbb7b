"""Queues as operators see them: ``replaykit queues``/``stats`` and the viewer's queue page."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from replaykit.integrations.viewer import viewer_app
from replaykit.runtime.app import App

from .test_cli import as_json, invoke
from .workflows import ops_app, ticker


@pytest.fixture
def queued(database_url: str) -> Iterator[App]:
    """A client app with queue ``mail`` (concurrency 1, 5 per minute) holding one admitted
    (running) instance and one queued, and an idle queue ``bulk``."""
    app = ops_app(database_url, workers=False)
    app.queue("mail", concurrency=1, rate=(5, 60.0))
    app.queue("bulk", per_worker=2)
    app.enqueue("mail", ticker, 1, instance_id="mail-1", priority=2, dedup_key="m1")
    app.enqueue("mail", ticker, 2, instance_id="mail-2")
    admitted = app.storage.admit("ops", queues=["mail"], limit=10, now=time.time())
    assert admitted.admitted == ["mail-1"]
    yield app
    app.stop()


def test_cli_queues_lists_depth_running_and_limits(queued: App, database_url: str) -> None:
    rows = as_json(database_url, "queues")
    assert rows == [
        {"name": "bulk", "queued": 0, "running": 0, "concurrency": None, "per_worker": 2,
         "rate_limit": None, "rate_period": None},
        {"name": "mail", "queued": 1, "running": 1, "concurrency": 1, "per_worker": None,
         "rate_limit": 5, "rate_period": 60.0},
    ]  # fmt: skip
    code, out = invoke(database_url, "queues")
    assert code == 0 and "mail" in out and "5 per 60.0 s" in out


def test_cli_stats_shows_each_queue(queued: App, database_url: str) -> None:
    stats = as_json(database_url, "stats")
    assert stats["queues"]["mail"]["queued"] == 1  # type: ignore[index]
    code, out = invoke(database_url, "stats")
    assert code == 0 and "queue mail" in out and "1 queued, 1 running" in out


def test_viewer_queue_page_and_queued_instances(queued: App) -> None:
    with TestClient(viewer_app(queued)) as client:
        page = client.get("/queues")
        assert page.status_code == 200
        row = page.text.split('<td class="mono">mail</td>', 1)[1].split("</tr>", 1)[0]
        cells = [c.split(">")[-1] for c in row.split("</td>") if "<td" in c]
        assert cells[1:] == ["1", "1", "-", "5 per 1m 0s"]  # running, concurrency, per worker
        listed = client.get("/?status=queued")
        assert "/instances/mail-2" in listed.text and "/instances/mail-1" not in listed.text
        detail = client.get("/instances/mail-1")
        assert "priority 2" in detail.text and "key m1" in detail.text
        assert "admitted" in detail.text
        assert "not admitted yet" in client.get("/instances/mail-2").text


def test_a_queued_timeout_is_shown_until_the_admission_sets_the_deadline(
    queued: App, database_url: str
) -> None:
    queued.enqueue("mail", ticker, 3, instance_id="mail-3", timeout=90)
    code, out = invoke(database_url, "show", "mail-3")
    assert code == 0 and "deadline 90 s after its admission" in out
    with TestClient(viewer_app(queued)) as client:
        page = client.get("/instances/mail-3").text
        assert '<dd id="deadline">90 s after its admission</dd>' in page
    assert as_json(database_url, "show", "mail-3")["instance"]["timeout"] == 90  # type: ignore[index]

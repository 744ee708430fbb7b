"""The viewer's schedules page: next fire times, and pause/resume/trigger/delete as actions."""

from __future__ import annotations

from starlette.testclient import TestClient

from replaykit import workflow
from replaykit.core.definitions import Registry
from replaykit.integrations.viewer import viewer_app
from replaykit.integrations.viewer.timeline import when
from replaykit.runtime.app import App


@workflow(name="viewer_report")
def report(ctx, team: str):  # type: ignore[no-untyped-def]
    return team
    yield


def make_app(database_url: str) -> App:
    app = App(database_url, registry=Registry(), workers=False)
    app.schedule(report, "ops", every=3600, schedule_id="hourly")
    app.schedule(report, "x", cron="0 9 * * 1-5", timezone="Europe/Paris", schedule_id="daily")
    return app


def test_the_schedules_page_lists_schedules_with_next_fire_times(database_url: str) -> None:
    app = make_app(database_url)
    try:
        with TestClient(viewer_app(app)) as client:
            page = client.get("/schedules")
        assert page.status_code == 200
        assert "hourly" in page.text and "0 9 * * 1-5 (Europe/Paris)" in page.text
        assert page.text.count("badge s-completed") == 2  # both active
        assert "/actions/" not in page.text  # read-only
        nexts = app.get_schedule("hourly").next_fire_at
        assert when(nexts) in page.text
    finally:
        app.stop()


def test_schedule_actions_pause_resume_trigger_and_delete(database_url: str) -> None:
    app = make_app(database_url)
    try:
        with TestClient(viewer_app(app, allow_actions=True)) as client:
            page = client.get("/schedules")
            assert 'action="/actions/schedules/pause"' in page.text
            response = client.post("/actions/schedules/pause", data={"schedule_id": "hourly"})
            assert response.status_code == 200 and "pause: hourly" in response.text
            assert app.get_schedule("hourly").paused
            assert 'action="/actions/schedules/resume"' in response.text
            client.post("/actions/schedules/resume", data={"schedule_id": "hourly"})
            assert not app.get_schedule("hourly").paused
            client.post("/actions/schedules/trigger", data={"schedule_id": "daily"})
            assert [r.input for r in app.list_instances(workflow="viewer_report")] == ["x"]
            client.post("/actions/schedules/delete", data={"schedule_id": "daily"})
            assert [s.schedule_id for s in app.list_schedules()] == ["hourly"]
            missing = client.post("/actions/schedules/pause", data={"schedule_id": "daily"})
            assert missing.status_code == 404
            unknown = client.post("/actions/schedules/explode", data={"schedule_id": "hourly"})
            assert unknown.status_code == 404
    finally:
        app.stop()

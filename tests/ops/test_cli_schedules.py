"""``replaykit schedules``: list with next fire times, pause, resume, trigger, delete."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from replaykit import workflow
from replaykit.core.definitions import Registry
from replaykit.integrations.cli import cli
from replaykit.runtime.app import App

runner = CliRunner()


@workflow(name="cli_report")
def report(ctx, team: str):  # type: ignore[no-untyped-def]
    return team
    yield


def invoke(url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(cli, ["--database", url, *args], terminal_width=200)
    return result.exit_code, result.output


def test_schedules_are_listed_paused_resumed_triggered_and_deleted_from_the_cli(
    database_url: str,
) -> None:
    app = App(database_url, registry=Registry(), workers=False)
    try:
        app.schedule(report, "ops", cron="*/5 * * * *", timezone="Europe/Paris", schedule_id="r")
        code, out = invoke(database_url, "schedules", "list")
        assert code == 0 and "r" in out and "*/5 * * * * (Europe/Paris)" in out and "active" in out
        code, out = invoke(database_url, "--json", "schedules", "list", "--upcoming", "3")
        (row,) = json.loads(out)
        assert code == 0 and len(row["upcoming"]) == 3
        assert row["catch_up"] == "skip" and row["timezone"] == "Europe/Paris"
        assert row["upcoming"][1] - row["upcoming"][0] == 300
        assert invoke(database_url, "schedules", "pause", "r")[0] == 0
        assert app.get_schedule("r").paused
        code, out = invoke(database_url, "schedules", "resume", "r")
        assert code == 0 and "next at" in out and not app.get_schedule("r").paused
        code, out = invoke(database_url, "--json", "schedules", "trigger", "r")
        instance_id = json.loads(out)["instance_id"]
        assert code == 0 and app.status(instance_id).input == "ops"
        assert invoke(database_url, "schedules", "delete", "r")[0] == 0
        assert app.list_schedules() == []
        for action in ("pause", "resume", "trigger", "delete"):
            code, out = invoke(database_url, "schedules", action, "r")
            assert code == 3 and "no schedule with id 'r'" in out
    finally:
        app.stop()

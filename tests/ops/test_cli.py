"""The ``replaykit`` CLI against real databases (typer's CliRunner and ``main``)."""

from __future__ import annotations

import functools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from replaykit.integrations.cli import EXIT_CODES, cli, main
from replaykit.runtime.app import App

from .workflows import ops_app, order, ticker, wait_for_status

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def invoke(url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(cli, ["--database", url, *args], terminal_width=200)
    return result.exit_code, result.output


def as_json(url: str, *args: str) -> object:
    code, out = invoke(url, "--json", *args)
    assert code == 0, out
    return json.loads(out)


def test_list_filters_by_workflow_status_and_age(
    populated: tuple[App, dict[str, str]], database_url: str
) -> None:
    _, ids = populated
    code, out = invoke(database_url, "list")
    assert code == 0
    assert all(i in out for i in ids.values())
    failed = as_json(database_url, "list", "--status", "failed")
    assert [r["instance_id"] for r in failed] == [ids["failed"]]  # type: ignore[union-attr, index]
    tickers = as_json(database_url, "list", "--workflow", "ops_ticker")
    assert [r["instance_id"] for r in tickers] == [ids["recurring"]]  # type: ignore[union-attr, index]
    assert as_json(database_url, "list", "--older-than", "1h") == []
    assert len(as_json(database_url, "list", "--newer-than", "1h")) == 5  # type: ignore[arg-type]
    assert len(as_json(database_url, "list", "--limit", "2", "--offset", "4")) == 1  # type: ignore[arg-type]
    code, out = invoke(database_url, "list", "--older-than", "soon")
    assert code == 2 and "not a duration" in out


def test_show_prints_the_history_with_durations_retries_and_errors(
    populated: tuple[App, dict[str, str]], database_url: str
) -> None:
    _, ids = populated
    code, out = invoke(database_url, "show", ids["retried"])
    assert code == 0
    assert "RetryTimerFired" in out and "ConnectionError: payment gateway timed out" in out
    assert " ms" in out  # durations from the `at` timestamps
    code, out = invoke(database_url, "show", ids["failed"])
    assert "CompensationCompleted" in out and "Declined: card declined" in out
    assert "Traceback" in out
    shown = as_json(database_url, "show", ids["completed"])
    assert shown["instance"]["status"] == "completed"  # type: ignore[index]
    kinds = [e["e"] for e in shown["history"]]  # type: ignore[index]
    assert kinds == ["WorkflowStarted", "ActivityCompleted", "ActivityCompleted"]


def test_list_and_show_a_blocked_instance_with_its_mismatch(
    populated: tuple[App, dict[str, str]], database_url: str
) -> None:
    from replaykit.core.history import WorkflowStarted, encode_event
    from replaykit.storage import InstanceRecord

    app, _ = populated
    started = WorkflowStarted(workflow="ops_retired", instance_id="blk-1", at=time.time())
    record = InstanceRecord(
        instance_id="blk-1",
        workflow="ops_retired",  # no worker runs it: it stays blocked
        status="running",
        lease_owner="cli-test",
        lease_expires_at=time.time() + 60,
        created_at=time.time(),
        updated_at=time.time(),
    )
    app.storage.create_instance(record, encode_event(started))
    message = "instance 'blk-1' step 1: history has ActivityCall 'a', code yielded Sleep at x.py:3"
    error = {"type": "replaykit.core.errors.NonDeterminismError", "message": message, "step": 1}
    assert app.storage.block("blk-1", "cli-test", error, now=time.time())
    listed = as_json(database_url, "list", "--status", "blocked")
    assert [r["instance_id"] for r in listed] == ["blk-1"]  # type: ignore[union-attr, index]
    code, out = invoke(database_url, "show", "blk-1")
    assert code == 0 and "blocked" in out
    assert "NonDeterminismError: instance 'blk-1' step 1: history has ActivityCall" in out


def test_show_reads_archived_runs_of_a_recurring_workflow(
    populated: tuple[App, dict[str, str]], database_url: str
) -> None:
    _, ids = populated
    current = as_json(database_url, "show", ids["recurring"])
    assert current["instance"]["run"] == 3  # type: ignore[index]
    first = as_json(database_url, "show", ids["recurring"], "--run", "1")
    assert first["history"][0]["input"] == 1  # type: ignore[index]
    assert first["history"][-1]["e"] == "TimerFired"  # type: ignore[index]


def test_show_gives_the_deadline_and_the_timeout_of_an_instance_that_timed_out(
    populated: tuple[App, dict[str, str]], database_url: str
) -> None:
    app, _ = populated
    app.start_workflow(
        "ops_order", {"sku": "vase", "amount": 3.0, "wait": True}, instance_id="late", timeout=0.3
    )
    wait_for_status(app, "late", "cancelled")
    code, out = invoke(database_url, "show", "late")
    assert code == 0 and " deadline " in out
    assert "WorkflowTimedOut" in out and "CompensationCompleted" in out
    shown = as_json(database_url, "show", "late")
    instance = shown["instance"]  # type: ignore[index]
    assert instance["deadline"] == pytest.approx(instance["created_at"] + 0.3)


def test_missing_instance_exits_3(populated: tuple[App, dict[str, str]], database_url: str) -> None:
    code, out = invoke(database_url, "show", "no-such-instance")
    assert code == 3 and "no-such-instance" in out
    code, _ = invoke(database_url, "cancel", "no-such-instance")
    assert code == 3


def test_send_event_wakes_a_waiting_instance_and_cancel_compensates(
    populated: tuple[App, dict[str, str]], database_url: str
) -> None:
    app, ids = populated
    data = json.dumps({"by": "visa"})
    assert as_json(
        database_url, "send-event", "ops.paid", "--data", data, "--instance", ids["waiting"]
    ) == {"stored": True}
    assert app.result(ids["waiting"], timeout=30)["receipt"]["by"] == "visa"
    code, out = invoke(database_url, "send-event", "x", "--data", "{not json")
    assert code == 2 and "not JSON" in out
    app.start_workflow("ops_order", {"sku": "cup", "amount": 1.0, "wait": True}, instance_id="c1")
    wait_for_status(app, "c1", "waiting")
    code, out = invoke(database_url, "cancel", "c1", "--reason", "customer asked")
    assert code == 0 and "cancel requested for c1 (now cancelling)" in out
    wait_for_status(app, "c1", "cancelled")
    kinds = [type(e).__name__ for e in app.history("c1")]
    assert "CompensationCompleted" in kinds


def test_stats_and_migrate(populated: tuple[App, dict[str, str]], database_url: str) -> None:
    stats = as_json(database_url, "stats")
    assert stats["by_status"] == {"completed": 3, "failed": 1, "waiting": 1}  # type: ignore[index]
    assert stats["oldest_waiting"] is not None  # type: ignore[index]
    code, out = invoke(database_url, "stats")
    assert code == 0 and "oldest waiting" in out
    assert as_json(database_url, "migrate") == {"applied": []}
    shown = as_json(database_url, "migrate", "--show")
    assert shown and all(m["state"] == "applied" for m in shown)  # type: ignore[union-attr, index]


def test_migrate_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    shown = as_json(url, "migrate", "--show")
    assert {m["state"] for m in shown} == {"pending"}  # type: ignore[union-attr, index]
    applied = as_json(url, "migrate")
    assert applied["applied"] == [m["version"] for m in shown]  # type: ignore[index, union-attr]
    assert {m["state"] for m in as_json(url, "migrate", "--show")} == {"applied"}  # type: ignore[union-attr, index]


READING_COMMANDS = [
    ["list"],
    ["show", "x"],
    ["stats"],
    ["queues"],
    ["schedules", "list"],
    ["schedules", "pause", "x"],
    ["cancel", "x"],
    ["fork", "x", "--step", "1"],
    ["send-event", "t", "--data", "{}"],
]


def test_commands_on_an_unmigrated_database_say_so_and_exit_1(
    database_url: str, app_module: Callable[..., str]
) -> None:
    for command in [*READING_COMMANDS, ["replay-check", app_module()]]:
        code, out = invoke(database_url, *command)
        assert code == 1, (command, out)
        assert "replaykit: the database is not migrated: " in out, (command, out)
        assert "run 'replaykit migrate' on it first" in " ".join(out.split()), (command, out)
    shown = as_json(database_url, "migrate", "--show")
    assert {m["state"] for m in shown} == {"pending"}  # type: ignore[union-attr, index]
    assert as_json(database_url, "migrate")["applied"]  # type: ignore[index]
    assert invoke(database_url, "stats")[0] == invoke(database_url, "queues")[0] == 0


def test_commands_on_a_partly_migrated_database_name_the_pending_migrations(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    as_json(url, "migrate")
    with sqlite3.connect(tmp_path / "old.db") as conn:  # as if migrated by an older release
        [last] = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        conn.execute("DELETE FROM schema_migrations WHERE version = ?", (last,))
    conn.close()
    for command in READING_COMMANDS:
        code, out = invoke(url, *command)
        assert code == 1 and "the database is not fully migrated: 1 of " in out, (command, out)
        assert f"({last}_" in out
    assert main(["--database", url, "stats"]) == 1


def test_database_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("REPLAYKIT_DATABASE", url)
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    assert (tmp_path / "env.db").exists()


def _app_module(tmp_path: Path, url: str, *, changed: bool = False, patched: bool = False) -> str:
    """A module defining ``app`` (the ops workflows, or a changed ops_order) over ``url``."""
    name = f"rk_cli_app_{uuid.uuid4().hex[:8]}"
    body = [
        "from tests.ops.workflows import ops_app, charge, reserve",
        f"app = ops_app({url!r})",
    ]
    if changed:  # a deploy that reordered the activities: non-deterministic for old histories
        body += [
            "from replaykit import workflow",
            "@workflow(name='ops_order')",
            "def order(ctx, o):",
            "    receipt = yield charge(o['sku'], o['amount'])",
            "    reservation = yield reserve(o['sku'])",
            "    return {'reservation': reservation, 'receipt': receipt}",
            "app.register(order)",
        ]
    if patched:  # the same reorder behind a patch: old histories replay on the old path
        body += [
            "from replaykit import Patched, workflow",
            "@workflow(name='ops_order', version='v2')",
            "def order(ctx, o):",
            "    if (yield Patched('charge-first')):",
            "        receipt = yield charge(o['sku'], o['amount'])",
            "        reservation = yield reserve(o['sku'])",
            "    else:",
            "        reservation = yield reserve(o['sku'])",
            "        receipt = yield charge(o['sku'], o['amount'])",
            "    return {'reservation': reservation, 'receipt': receipt}",
            "app.register(order)",
        ]
    (tmp_path / f"{name}.py").write_text("\n".join(body) + "\n")
    return f"{name}:app"


@pytest.fixture
def app_module(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., str]:
    """``_app_module`` over the test's database, importable from the current directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    return functools.partial(_app_module, tmp_path, database_url)


def test_replay_check_passes_and_then_catches_a_changed_workflow(
    populated: tuple[App, dict[str, str]], database_url: str, app_module: Callable[..., str]
) -> None:
    good = app_module()
    code, out = invoke(database_url, "replay-check", good, "--since", "1h")
    assert code == 0, out
    assert "5 checked, 0 broken" in out
    assert "per code version" in out and f"{order.version} (current)" in out
    bad = app_module(changed=True)
    result = runner.invoke(cli, ["--json", "replay-check", bad, "--workflow", "ops_order"])
    assert result.exit_code == 4 == next(k for k, v in EXIT_CODES.items() if "replay" in v)
    report = json.loads(result.stdout)
    assert report["checked"] == 4 and report["failed"] == 4
    assert "step 1" in report["results"][0]["error"]
    [version] = report["versions"]
    assert version == {
        "workflow": "ops_order",
        "version": order.version,  # the code that started them is no longer the current code
        "current": False,
        "checked": 4,
        "ok": 0,
        "failed": 4,
        "patches": {},
    }
    assert invoke(database_url, "replay-check", "no_such_module:app")[0] == 1
    assert invoke(database_url, "replay-check", "nocolon")[0] == 2


def test_replay_check_understands_patches_and_reports_per_version(
    populated: tuple[App, dict[str, str]], database_url: str, app_module: Callable[..., str]
) -> None:
    patched = app_module(patched=True)
    result = runner.invoke(cli, ["--json", "replay-check", patched, "--workflow", "ops_order"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["checked"], report["failed"]) == (4, 0)
    assert report["versions"] == [
        {
            "workflow": "ops_order",
            "version": order.version,
            "current": False,
            "checked": 4,
            "ok": 4,
            "failed": 0,
            # every one passed the patch point under the old code: none may lose the old branch
            "patches": {"charge-first": {"new": 0, "old": 4}},
        }
    ]
    code, out = invoke(database_url, "replay-check", patched, "--workflow", "ops_order")
    assert code == 0 and "charge-first: 0 new, 4 old path" in out


def test_list_and_show_print_the_code_version(
    populated: tuple[App, dict[str, str]], database_url: str
) -> None:
    _, ids = populated
    code, out = invoke(database_url, "list", "--workflow", "ops_order")
    assert code == 0 and "version" in out and order.version in out
    code, out = invoke(database_url, "show", ids["completed"])
    assert code == 0 and f"version {order.version}" in out
    listed = as_json(database_url, "list", "--workflow", "ops_ticker")
    assert [r["version"] for r in listed] == [ticker.version]  # type: ignore[index, union-attr]


def test_fork_reruns_an_instance_from_a_step_and_show_says_where_it_came_from(
    populated: tuple[App, dict[str, str]], database_url: str
) -> None:
    app, ids = populated
    code, out = invoke(database_url, "fork", ids["completed"], "--step", "2", "--new-id", "f1")
    assert code == 0 and f"forked {ids['completed']} at step 2 into f1" in out
    assert app.result("f1", timeout=30) == app.result(ids["completed"], timeout=5)
    code, out = invoke(database_url, "show", "f1")
    assert code == 0 and f"forked from {ids['completed']} at step 2" in out
    assert f"(forked from {ids['completed']} at step 2)" in out  # its first event says so too
    forked = as_json(database_url, "fork", ids["failed"], "--step", "2")
    assert forked["forked_from"] == ids["failed"] and forked["forked_step"] == 2  # type: ignore[index]
    record = as_json(database_url, "show", forked["instance_id"])["instance"]  # type: ignore[index]
    assert (record["forked_from"], record["forked_step"]) == (ids["failed"], 2)
    code, out = invoke(database_url, "fork", ids["completed"], "--step", "9")
    assert code == 1 and "cannot fork instance" in out and "from step 9" in out
    assert invoke(database_url, "fork", "no-such", "--step", "1")[0] == 3
    assert invoke(database_url, "fork", ids["completed"])[0] == 2  # --step is required


def test_main_returns_exit_codes_for_scripts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    assert main(["--database", url, "migrate"]) == 0
    assert main(["--database", url, "show", "missing"]) == 3
    assert main(["--database", url, "no-such-command"]) == 2
    assert main(["--database", "oracle://x", "list"]) == 1


def test_demo_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    assert "demo finished: OK" in capsys.readouterr().out


class CliProcess:
    """``replaykit ARGS`` in a child process over a fresh SQLite file with the ops workflows; a
    client App on the same file; ``stop()`` sends SIGTERM and returns (exit code, stderr)."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.url = f"sqlite:///{tmp_path / 'cli.db'}"
        module = _app_module(tmp_path, self.url)
        env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
        command = [sys.executable, "-m", "replaykit.integrations.cli", args[0], module, *args[1:]]
        self.proc = subprocess.Popen(
            command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
        )
        self.client = ops_app(self.url, workers=False)

    def stop(self) -> tuple[int, str]:
        self.client.stop()
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, err

    def kill(self) -> None:
        self.client.stop()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def cli_process(tmp_path: Path) -> Iterator[Callable[..., CliProcess]]:
    started: list[CliProcess] = []

    def start(*args: str) -> CliProcess:
        started.append(CliProcess(tmp_path, *args))
        return started[-1]

    yield start
    for process in started:
        process.kill()


@pytest.mark.slow
def test_worker_runs_until_sigterm_and_stops_cleanly(
    cli_process: Callable[..., CliProcess],
) -> None:
    worker = cli_process("worker")
    worker.client.start_workflow("ops_order", {"sku": "a", "amount": 2.0}, instance_id="w1")
    wait_for_status(worker.client, "w1", "completed")
    code, err = worker.stop()
    assert code == 0, err
    assert "worker stopped" in err


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_serve_runs_workers_cloudevents_and_the_viewer_on_one_port(
    cli_process: Callable[..., CliProcess],
) -> None:
    import httpx

    port = _free_port()
    served = cli_process("serve", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz").text == "ok":
                break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
    order = {"sku": "s", "amount": 3.0, "wait": True}
    served.client.start_workflow("ops_order", order, instance_id="srv-1")
    wait_for_status(served.client, "srv-1", "waiting")
    event = {
        "specversion": "1.0",
        "type": "ops.paid",
        "source": "test",
        "id": "evt-1",
        "replaykitinstanceid": "srv-1",
        "data": {"by": "http"},
    }
    headers = {"content-type": "application/cloudevents+json"}
    posted = httpx.post(f"{base}/events", json=event, headers=headers)
    assert posted.status_code == 202, posted.text
    wait_for_status(served.client, "srv-1", "completed")
    page = httpx.get(f"{base}/instances/srv-1")
    assert page.status_code == 200 and "EventReceived" in page.text
    code, err = served.stop()
    assert code == 0, err
    assert "CloudEvents intake at POST /events" in err

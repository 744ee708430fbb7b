"""What a workflow's steps write, statement by statement: the lean path of a simple step (issue 15)
and the end of an instance that did register timers, waits or subscriptions."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from replaykit import Publish, Sleep, Subscribe, WaitEvent, activity, workflow
from replaykit.core.definitions import Registry
from replaykit.runtime.app import App
from storage_adapters.sqlite.adapter import SqliteStorage


@activity
def add_one(ctx: Any, x: int) -> int:
    return x + 1


@workflow
def three_steps(ctx: Any, x: int) -> Generator[Any, Any, Any]:
    a = yield add_one(x)
    b = yield add_one(a)
    return (yield add_one(b))


@workflow
def registers_everything(ctx: Any, x: int) -> Generator[Any, Any, Any]:
    yield Subscribe("news")
    yield Sleep(0.01)
    event = yield WaitEvent("go", timeout=60)  # its timeout timer stays until the event
    yield Publish("news", {"n": 1})
    return event.data["n"] + (yield add_one(x))


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the SQLite adapter's connections run."""
    statements: list[str] = []
    connect = SqliteStorage._connect

    def traced_connect(self: SqliteStorage) -> sqlite3.Connection:
        conn = connect(self)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(SqliteStorage, "_connect", traced_connect)
    return statements


def test_a_three_activity_workflow_writes_eight_statements_in_four_transactions_on_sqlite(
    tmp_path: Path, traced: list[str]
) -> None:
    with App(f"sqlite:///{tmp_path / 'rk.db'}", registry=Registry()) as app:
        assert app.start_workflow(three_steps, 1, instance_id="warm").result(timeout=10) == 4
        time.sleep(0.05)  # background threads' start-up statements are done
        traced.clear()
        assert app.start_workflow(three_steps, 1, instance_id="i").result(timeout=10) == 4
        mine = [s for s in traced if "'i'" in s or s in ("BEGIN IMMEDIATE", "COMMIT")]
    writes = [s.split()[0] for s in mine if s not in ("BEGIN IMMEDIATE", "COMMIT")]
    # the instance and its first event; then per step the lease-fenced UPDATE and its event
    assert writes == ["INSERT", "INSERT"] + ["UPDATE", "INSERT"] * 3
    assert mine.count("COMMIT") == 4
    assert not any(s.startswith("DELETE") for s in mine)  # nothing was registered to clean up


def rows_of(app: App, instance_id: str) -> dict[str, int]:
    def count(tx: Any) -> dict[str, int]:
        return {
            table: int(
                tx.one(f"SELECT COUNT(*) AS n FROM {table} WHERE instance_id = ?", instance_id)["n"]
            )
            for table in ("rk_timers", "rk_waits", "rk_subscriptions")
        }

    found: dict[str, int] = app.storage._read(count)  # type: ignore[attr-defined]
    return found


def test_a_finished_instance_keeps_no_timer_wait_or_subscription(
    make_app: Callable[..., App], registry: Registry
) -> None:
    registry.add_workflow(registers_everything)
    app = make_app()
    app.start()
    handle = app.start_workflow(registers_everything, 1)
    deadline = time.monotonic() + 10
    while app.status(handle.instance_id).status != "waiting" or not any(
        rows_of(app, handle.instance_id).values()
    ):
        assert time.monotonic() < deadline, "the instance never waited for its event"
        time.sleep(0.02)
    assert rows_of(app, handle.instance_id)["rk_subscriptions"] == 1
    app.send_event("go", {"n": 40}, instance_id=handle.instance_id)
    assert handle.result(timeout=10) == 42
    assert rows_of(app, handle.instance_id) == {
        "rk_timers": 0,
        "rk_waits": 0,
        "rk_subscriptions": 0,
    }


def test_a_finished_instance_with_a_deadline_keeps_no_deadline_timer(
    make_app: Callable[..., App], registry: Registry
) -> None:
    registry.add_workflow(three_steps)
    app = make_app()
    app.start()
    handle = app.start_workflow(three_steps, 1, timeout=3600)
    assert handle.result(timeout=10) == 4
    assert rows_of(app, handle.instance_id)["rk_timers"] == 0

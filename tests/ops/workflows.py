"""Workflows the operations tests run for real: completed, failed with compensation, waiting,
retried, recurring. ``ops_app(url)`` builds an App over them in its own Registry."""

from __future__ import annotations

from typing import Any

import pytest

from replaykit import (
    Recur,
    RetryPolicy,
    Sleep,
    TerminalError,
    WaitEvent,
    WorkflowFailed,
    activity,
    workflow,
)
from replaykit.core.definitions import Registry
from replaykit.runtime.app import App


class Declined(TerminalError):
    """The card was declined."""


@activity(name="ops_release")
def release(ctx: Any, sku: str) -> str:
    return f"released {sku}"


@activity(name="ops_reserve", compensate=release)
def reserve(ctx: Any, sku: str) -> str:
    return f"rsv-{sku}"


@activity(
    name="ops_charge",
    transactional=False,
    retry=RetryPolicy(max_attempts=3, initial_interval=0.01),
)
def charge(ctx: Any, key: str, amount: float) -> dict[str, Any]:
    if amount > 1000:
        raise Declined(f"card declined for {amount:.2f}")
    if amount == 13 and ctx.attempt == 1:
        raise ConnectionError("payment gateway timed out")
    return {"charged": amount}


@workflow(name="ops_order")
def order(ctx: Any, o: dict[str, Any]):  # type: ignore[no-untyped-def]
    reservation = yield reserve(o["sku"])
    receipt = yield charge(o["sku"], o["amount"])
    if o.get("wait"):
        paid = yield WaitEvent("ops.paid", timeout=3600)
        receipt["by"] = paid.data["by"]
    return {"reservation": reservation, "receipt": receipt}


@workflow(name="ops_ticker")
def ticker(ctx: Any, n: int):  # type: ignore[no-untyped-def]
    yield Sleep(0.01)
    if n < 3:
        yield Recur(n + 1)
    return n


def ops_registry() -> Registry:
    registry = Registry()
    for item in (order, ticker):
        registry.add_workflow(item)
    for act in (reserve, charge, release):
        registry.add_activity(act)
    return registry


def ops_app(url: str, **options: Any) -> App:
    return App(url, registry=ops_registry(), poll_interval=0.05, **options)


def populate(app: App) -> dict[str, str]:
    """Start one instance of every kind and wait until each is where the tests expect it."""
    ids = {
        "completed": "ord-done",
        "retried": "ord-retried",
        "failed": "ord-declined",
        "waiting": "ord-waiting",
        "recurring": "tick-1",
    }
    app.start_workflow(order, {"sku": "book", "amount": 20.0}, instance_id=ids["completed"])
    app.start_workflow(order, {"sku": "pen", "amount": 13.0}, instance_id=ids["retried"])
    app.start_workflow(order, {"sku": "lamp", "amount": 5000.0}, instance_id=ids["failed"])
    app.start_workflow(
        order, {"sku": "mug", "amount": 7.5, "wait": True}, instance_id=ids["waiting"]
    )
    app.start_workflow(ticker, 1, instance_id=ids["recurring"])
    for key in ("completed", "retried", "recurring"):
        app.result(ids[key], timeout=30)
    with pytest.raises(WorkflowFailed):
        app.result(ids["failed"], timeout=30)
    wait_for_status(app, ids["waiting"], "waiting")
    return ids


def wait_for_status(app: App, instance_id: str, status: str, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while (record := app.get_instance(instance_id)) is None or record.status != status:
        if time.monotonic() > deadline:  # (None: not created yet, e.g. a child)
            raise AssertionError(f"{instance_id} is {record and record.status}, not {status}")
        time.sleep(0.02)

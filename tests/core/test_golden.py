"""Golden histories kept as files pin the on-disk format (DESIGN.md section 5.7).

Each ``golden/<name>.json`` is the exact output of :func:`encode_history` for a representative
run. The tests check that every file decodes, re-encodes to the same bytes, replays against the
current code to the expected decision, and is still what a fresh recording produces.

After a *deliberate* format change, regenerate the files and review the diff::

    REPLAYKIT_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/core/test_golden.py
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from replaykit import (
    All,
    AnyOf,
    Command,
    EventTimeout,
    Interpreter,
    Now,
    Publish,
    Random,
    Receive,
    Recur,
    RetryPolicy,
    SideEffect,
    Sleep,
    Uuid,
    WaitEvent,
    activity,
    workflow,
)
from replaykit.core.history import (
    ActivityFailed,
    ChildFailed,
    CompensationFailed,
    Event,
    decode_history,
    encode_history,
)
from replaykit.testing import TestRun, WorkflowEnvironment

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("REPLAYKIT_REGEN_GOLDEN") == "1"


class OutOfStock(Exception):
    pass


@activity(name="gold_release")
def gold_release(ctx: Any, sku: str, qty: int) -> None:
    return None


@activity(name="gold_reserve", compensate=gold_release)
def gold_reserve(ctx: Any, sku: str, qty: int) -> str:
    if sku == "none":
        raise OutOfStock(f"{sku} is out of stock")
    return f"res-{sku}-{qty}"


@activity(name="gold_charge", retry=RetryPolicy(max_attempts=2, initial_interval=5.0))
def gold_charge(ctx: Any, amount: float) -> dict[str, Any]:
    if amount > 100:
        raise ValueError(f"amount {amount} declined")
    return {"charged": amount, "attempt": ctx.attempt}


@workflow(name="gold_order")
def gold_order(ctx: Any, order: dict[str, Any]) -> Generator[Command, Any, Any]:
    reservation = yield gold_reserve(order["sku"], order["qty"])
    receipt = yield gold_charge(order["amount"])
    paid = yield WaitEvent("payment.completed", timeout=300)
    yield Sleep(60)
    yield Publish("orders", {"id": order["id"], "state": "done"})
    return {"reservation": reservation, "receipt": receipt, "paid": paid.data}


@workflow(name="gold_fanout")
def gold_fanout(ctx: Any) -> Generator[Command, Any, Any]:
    both = yield All([gold_reserve("a", 1), Sleep(10), WaitEvent("go")])
    try:
        yield AnyOf([WaitEvent("never", timeout=5), Sleep(50)])
    except EventTimeout as exc:
        timed_out = exc.waited_for
    settled = yield All([gold_reserve("none", 1), gold_reserve("b", 2)], settled=True)
    now = yield Now()
    uid = yield Uuid()
    rnd = yield Random()
    side = yield SideEffect(lambda: {"n": 7}, name="seven")
    return {
        "both": [both[0], both[1], both[2].data],
        "timed_out": timed_out,
        "settled": [repr(s) if isinstance(s, BaseException) else s for s in settled],
        "values": [now.isoformat(), uid, rnd, side],
    }


@workflow(name="gold_child")
def gold_child(ctx: Any, n: int) -> Generator[Command, Any, int]:
    msg = yield Receive("inbox", timeout=3600)
    if n < 0:
        raise ValueError("negative child")
    return n + int(msg.data)


@workflow(name="gold_parent")
def gold_parent(ctx: Any, n: int) -> Generator[Command, Any, Any]:
    try:
        yield gold_child.child(-1)
    except ValueError as exc:
        failure = str(exc.args[0])
    started = yield gold_child.start_child(n)
    if n < 2:
        yield Recur(n + 1)
    return {"failure": failure, "started": started}


def _record_order(env: WorkflowEnvironment, failing: bool) -> TestRun:
    amount = 500.0 if failing else 20.0
    order = {"id": "o1", "sku": "book", "qty": 2, "amount": amount}
    run = env.start(gold_order, order, instance_id="order-1")
    run.send_event("payment.completed", {"order": "o1"})
    return run.run_to_completion()


def _record_order_cancelled(env: WorkflowEnvironment) -> TestRun:
    order = {"id": "o2", "sku": "pen", "qty": 1, "amount": 3.0}
    run = env.start(gold_order, order, instance_id="order-2")
    run.advance(100)
    return run.cancel("customer asked")


def _record_fanout(env: WorkflowEnvironment) -> TestRun:
    run = env.start(gold_fanout, instance_id="fanout-1")
    run.send_event("go", {"x": 1})
    return run.run_to_completion()


def _record_parent(env: WorkflowEnvironment) -> TestRun:
    run = env.start(gold_parent, 1, instance_id="parent-1")
    env.runs["parent-1/1"].send_message("inbox", "0")
    env.runs["parent-1/2"].send_message("inbox", "5")
    return run


def _record_waiting(env: WorkflowEnvironment) -> TestRun:
    order = {"id": "o3", "sku": "mug", "qty": 3, "amount": 9.5}
    return env.start(gold_order, order, instance_id="order-3")


CASES: dict[str, tuple[Any, Callable[[WorkflowEnvironment], TestRun]]] = {
    "order_completed": (gold_order, lambda env: _record_order(env, failing=False)),
    "order_failed_compensated": (gold_order, lambda env: _record_order(env, failing=True)),
    "order_cancelled": (gold_order, _record_order_cancelled),
    "order_waiting": (gold_order, _record_waiting),
    "fanout_and_values": (gold_fanout, _record_fanout),
    "parent_child_recur": (gold_parent, _record_parent),
}

EXPECTED: dict[str, dict[str, Any]] = {
    "order_completed": {
        "status": "completed",
        "result": {
            "paid": {"order": "o1"},
            "receipt": {"attempt": 1, "charged": 20.0},
            "reservation": "res-book-2",
        },
    },
    "order_failed_compensated": {"status": "failed", "error": "builtins.ValueError"},
    "order_cancelled": {"status": "cancelled", "error": "replaykit.core.errors.WorkflowCancelled"},
    "order_waiting": {"status": "running", "waiting": ["WaitEvent"]},
    "fanout_and_values": {
        "status": "completed",
        "result": {
            "both": ["res-a-1", None, {"x": 1}],
            "settled": ["OutOfStock('none is out of stock')", "res-b-2"],
            "timed_out": "never",
            "values": [
                "2026-01-01T00:00:18+00:00",  # 10 s sleep, 5 s timeout, retries 1 s + 2 s
                "e3e70682-c209-4cac-a29f-6fbed82c07cd",
                0.420571580830845,
                {"n": 7},
            ],
        },
    },
    "parent_child_recur": {"status": "continued", "recur_input": 2},
}


def record(name: str) -> list[Event]:
    """A fresh recording of case ``name`` (the first run's history), without tracebacks."""
    _, recorder = CASES[name]
    run = recorder(WorkflowEnvironment())
    history = run.archived[0] if run.archived else run.history
    return [_without_traceback(e) for e in history]


def _without_traceback(event: Event) -> Event:
    if isinstance(event, ActivityFailed | ChildFailed | CompensationFailed):
        error = msgspec.structs.replace(event.error, traceback="")
        return msgspec.structs.replace(event, error=error)
    return event


def golden_path(name: str) -> Path:
    return GOLDEN / f"{name}.json"


def regenerate(name: str) -> None:
    """Rewrite ``golden/<name>.json`` from a fresh recording (REPLAYKIT_REGEN_GOLDEN=1 only)."""
    GOLDEN.mkdir(exist_ok=True)
    golden_path(name).write_bytes(encode_history(record(name)) + b"\n")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_file_is_what_a_fresh_recording_produces(name: str) -> None:
    if REGEN:
        regenerate(name)
    recorded = encode_history(record(name))  # type: ignore[arg-type]
    assert recorded + b"\n" == golden_path(name).read_bytes(), (
        f"{name}: the recorded history changed; if on purpose, regenerate with "
        "REPLAYKIT_REGEN_GOLDEN=1 and review the diff"
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_file_reencodes_to_the_same_bytes(name: str) -> None:
    data = golden_path(name).read_bytes()
    assert encode_history(decode_history(data)) + b"\n" == data


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_history_replays_to_the_expected_decision(name: str) -> None:
    wf, _ = CASES[name]
    history = decode_history(golden_path(name).read_bytes())
    interp = Interpreter(wf, instance_id=getattr(history[0], "instance_id", ""))
    decision = interp.feed(history, replaying=True)
    expected = EXPECTED[name]
    assert decision.status == expected["status"]
    if "result" in expected:
        assert decision.result == expected["result"]
    if "error" in expected:
        assert decision.error is not None and decision.error.type == expected["error"]
    if "recur_input" in expected:
        assert decision.recur_input == expected["recur_input"]
    if "waiting" in expected:
        kinds = [type(s.command).__name__ for s in interp.outstanding()]
        assert kinds == expected["waiting"]


def test_every_golden_file_has_a_case() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == sorted(CASES)

"""The demo: an order saga on an embedded SQLite file, surviving a restart.

Run it with ``python -m replaykit.demo``. It

1. starts order o-1, which reserves stock, charges, then waits for a ``payment.confirmed`` event;
2. stops the app while o-1 waits (as a deploy or a crash would) and starts a fresh App on the
   same file; the event wakes o-1, which finishes without re-running its activities;
3. starts order o-2 whose charge is declined: the saga releases the stock it reserved;
4. prints each instance's recorded history.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from typing import Any

import msgspec

from replaykit import (
    ActivityError,
    RetryPolicy,
    Sleep,
    TerminalError,
    WaitEvent,
    WorkflowFailed,
    activity,
    workflow,
)
from replaykit.runtime.app import App

CALLS: list[str] = []


class OrderInput(msgspec.Struct):
    id: str
    sku: str
    qty: int
    amount: float


class OrderResult(msgspec.Struct):
    id: str
    reservation: str
    receipt: dict[str, Any]
    paid_by: str


class PaymentDeclined(TerminalError):
    """The card was declined: retrying will not help."""


@activity
def release_stock(ctx: Any, sku: str, qty: int) -> None:
    CALLS.append(f"release_stock({sku}, {qty}) undoing {ctx.compensating_result}")
    print(f"    ↩ release_stock: {qty} x {sku} back on the shelf ({ctx.compensating_result})")


@activity(compensate=release_stock)
def reserve_stock(ctx: Any, sku: str, qty: int) -> str:
    CALLS.append(f"reserve_stock({sku}, {qty})")
    print(f"    ✓ reserve_stock: {qty} x {sku}")
    return f"rsv-{sku}-{qty}"


@activity(retry=RetryPolicy(max_attempts=3, initial_interval=0.05), transactional=False)
def charge(ctx: Any, order_id: str, amount: float) -> dict[str, Any]:
    CALLS.append(f"charge({order_id}, {amount})")
    if amount > 1000:
        print(f"    ✗ charge: {amount:.2f} declined for {order_id}")
        raise PaymentDeclined(f"card declined for {amount:.2f}")
    print(f"    ✓ charge: {amount:.2f} for {order_id}")
    return {"order": order_id, "charged": amount}


@workflow
def order(ctx: Any, o: OrderInput):  # type: ignore[no-untyped-def]
    """Reserve stock, charge, wait for the payment confirmation, then settle."""
    reservation = yield reserve_stock(o.sku, o.qty)
    receipt = yield charge(o.id, o.amount)
    confirmed = yield WaitEvent("payment.confirmed", timeout=300)
    yield Sleep(0.05)
    return OrderResult(
        id=o.id, reservation=reservation, receipt=receipt, paid_by=confirmed.data["by"]
    )


def _show_history(app: App, instance_id: str) -> None:
    for position, event in enumerate(app.history(instance_id)):
        fields = {k: v for k, v in msgspec.structs.asdict(event).items() if k not in ("at",)}
        kind = type(event).__name__
        step = fields.pop("step", "")
        detail = ", ".join(f"{k}={v!r}" for k, v in fields.items() if v not in (None, "", {}))
        print(f"    {position:>2} step {step!s:>2}  {kind:<22} {detail[:90]}")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    folder = tempfile.mkdtemp(prefix="replaykit-demo-")
    url = f"sqlite:///{os.path.join(folder, 'orders.db')}"
    print(f"replaykit demo — database {url}\n")

    print("1. order o-1 starts, then waits for payment.confirmed")
    with App(url, workflows=[order], poll_interval=0.05) as app:
        handle = app.start_workflow(order, OrderInput("o-1", "book", 2, 42.0), instance_id="o-1")
        while app.status("o-1").status != "waiting":
            time.sleep(0.01)
        print(f"   o-1 is {app.status('o-1').status}; stopping the app (simulated restart)\n")

    print("2. a fresh App on the same file; the event arrives")
    calls_before = len(CALLS)
    with App(url, workflows=[order], poll_interval=0.05) as app:
        app.send_event("payment.confirmed", {"by": "visa"}, instance_id="o-1")
        result = app.result(handle.instance_id, timeout=30)
        print(f"   o-1 completed: {result}")
        rerun = CALLS[calls_before:]
        print(f"   activities re-run after the restart: {rerun or 'none'}\n")

        print("3. order o-2 is declined; the saga compensates")
        app.start_workflow(order, OrderInput("o-2", "lamp", 1, 5000.0), instance_id="o-2")
        try:
            app.result("o-2", timeout=30)
        except WorkflowFailed as exc:
            print(f"   o-2 failed as expected: {exc.type_name.rsplit('.', 1)[-1]}")
        except ActivityError as exc:  # pragma: no cover - not expected
            print(f"   o-2 failed: {exc}")

        print("\n4. recorded histories")
        for instance_id in ("o-1", "o-2"):
            print(f"   {instance_id}:")
            _show_history(app, instance_id)
    ok = not rerun and any(c.startswith("release_stock") for c in CALLS)
    print("\ndemo finished:", "OK" if ok else "UNEXPECTED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

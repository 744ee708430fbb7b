"""An order saga: reserve stock, charge the card, ship. A declined card undoes the reservation.

Run it: ``python docs/examples/order_saga.py`` (a temporary SQLite file; set REPLAYKIT_DATABASE
to use another database). Then look at the result with ``replaykit show order-2``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Generator
from typing import Any

import msgspec

from replaykit import RetryPolicy, TerminalError, WorkflowFailed, activity, workflow
from replaykit.runtime.app import App


class Order(msgspec.Struct):
    id: str
    sku: str
    qty: int
    amount: float


class Shipped(msgspec.Struct):
    id: str
    reservation: str
    tracking: str


class CardDeclined(TerminalError):
    """Retrying a declined card will not help."""


STOCK = {"book": 10, "lamp": 1}


@activity
def release_stock(ctx: Any, sku: str, qty: int) -> None:
    STOCK[sku] += qty  # compensation: gets the original arguments


@activity(compensate=release_stock)
def reserve_stock(ctx: Any, sku: str, qty: int) -> str:
    STOCK[sku] -= qty
    return f"rsv-{sku}-{qty}"


@activity(retry=RetryPolicy(max_attempts=3, initial_interval=0.1), transactional=False)
def charge(ctx: Any, order_id: str, amount: float) -> str:
    if amount > 500:
        raise CardDeclined(f"card declined for {amount:.2f}")
    return f"receipt-{order_id}"


@activity
def ship(ctx: Any, order_id: str) -> str:
    return f"TRACK-{order_id.upper()}"


@workflow
def order_saga(ctx: Any, order: Order) -> Generator[Any, Any, Shipped]:
    reservation = yield reserve_stock(order.sku, order.qty)
    yield charge(order.id, order.amount)
    tracking = yield ship(order.id)
    return Shipped(id=order.id, reservation=reservation, tracking=tracking)


def main() -> int:
    url = os.environ.get("REPLAYKIT_DATABASE") or (
        f"sqlite:///{os.path.join(tempfile.mkdtemp(), 'orders.db')}"
    )
    with App(url, workflows=[order_saga], poll_interval=0.1) as app:
        shipped = app.start_workflow(order_saga, Order("order-1", "book", 2, 30.0)).result(30)
        print(f"order-1 shipped: {shipped.tracking}; stock of book is now {STOCK['book']}")

        handle = app.start_workflow(order_saga, Order("order-2", "lamp", 1, 900.0))
        try:
            handle.result(30)
        except WorkflowFailed as exc:
            print(
                f"order-2 failed ({exc.type_name.rsplit('.', 1)[-1]}); lamp stock back to "
                f"{STOCK['lamp']}"
            )
        kinds = [type(e).__name__ for e in app.history(handle.instance_id)]
        print("order-2 history:", ", ".join(kinds))
    ok = STOCK == {"book": 8, "lamp": 1} and "CompensationCompleted" in kinds
    print("OK" if ok else "UNEXPECTED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

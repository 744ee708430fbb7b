"""Wait for a payment event with a timeout: paid orders complete, unpaid ones are cancelled.

``WaitEvent(type, timeout=)`` parks the instance (no worker, no thread is held) until the event
arrives or the durable timer fires; on timeout the workflow gets ``EventTimeout`` at its yield.
Run it: ``python docs/examples/payment_timeout.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

from replaykit import EventTimeout, WaitEvent, activity, workflow
from replaykit.runtime.app import App

PAYMENT_WINDOW = 1.0  # seconds here; minutes or days in real life


@activity
def send_invoice(ctx: Any, order_id: str) -> str:
    return f"invoice-{order_id}"


@activity
def release_order(ctx: Any, order_id: str) -> str:
    return f"{order_id} released"


@workflow
def await_payment(ctx: Any, order_id: str):  # type: ignore[no-untyped-def]
    yield send_invoice(order_id)
    try:
        paid = yield WaitEvent(
            "payment.received", timeout=PAYMENT_WINDOW, match={"order": order_id}
        )
    except EventTimeout:
        note = yield release_order(order_id)
        return {"order": order_id, "state": "expired", "note": note}
    return {"order": order_id, "state": "paid", "by": paid.data["by"]}


def main() -> int:
    url = os.environ.get("REPLAYKIT_DATABASE") or (
        f"sqlite:///{os.path.join(tempfile.mkdtemp(), 'payments.db')}"
    )
    with App(url, workflows=[await_payment], poll_interval=0.1) as app:
        paid = app.start_workflow(await_payment, "A-1", instance_id="pay-A-1")
        unpaid = app.start_workflow(await_payment, "A-2", instance_id="pay-A-2")
        while app.status("pay-A-1").status != "waiting":
            time.sleep(0.02)
        # an event for every waiting instance; `match` picks the right order
        app.send_event("payment.received", {"order": "A-1", "by": "card"})
        results = [paid.result(30), unpaid.result(30)]
    for result in results:
        print(result)
    ok = [r["state"] for r in results] == ["paid", "expired"]
    print("OK" if ok else "UNEXPECTED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

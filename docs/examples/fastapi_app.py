"""CloudEvents into workflows, mounted in a FastAPI app (docs/integrations/cloudevents.md).

python docs/examples/fastapi_app.py     # serves http://127.0.0.1:8000/events (and /events/)
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Generator
from typing import Any

import msgspec
from fastapi import FastAPI

from replaykit import WaitEvent, workflow
from replaykit.integrations.http import cloudevents_routes
from replaykit.runtime.app import App


class Order(msgspec.Struct):
    order_id: str
    amount: float


@workflow
def fulfil(ctx: Any, order: Order) -> Generator[Any, Any, str]:
    """Started by an ``order.placed`` event; waits for its ``payment.completed`` event."""
    yield WaitEvent("payment.completed", match={"order_id": order.order_id}, timeout=3600)
    return f"order {order.order_id} paid"


def build(database: str) -> tuple[App, FastAPI]:
    app = App(database, workflows=[fulfil])
    # one instance per order event; a redelivered event starts nothing new
    app.on_event("order.placed", fulfil, instance_id="order-{id}")

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with app:  # starts the workers; stops them on shutdown
            yield

    web = FastAPI(lifespan=lifespan)

    @web.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    # the CloudEvents endpoint, under any path: POST /events and /events/ both work
    web.router.routes.extend(cloudevents_routes(app, "/events"))
    return app, web


if __name__ == "__main__":
    import uvicorn

    _, web = build(sys.argv[1] if len(sys.argv) > 1 else "sqlite:///orders.db")
    uvicorn.run(web, host="127.0.0.1", port=8000)

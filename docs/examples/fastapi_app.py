"""CloudEvents into workflows, mounted in a web app (docs/integrations/cloudevents.md).

    python docs/examples/fastapi_app.py            # serves on http://127.0.0.1:8000/events/

With FastAPI it is the same call: ``api = FastAPI(); api.mount("/events", app.asgi())``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Generator
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from replaykit import WaitEvent, workflow
from replaykit.runtime.app import App


class Order(msgspec.Struct):
    order_id: str
    amount: float


@workflow
def fulfil(ctx: Any, order: Order) -> Generator[Any, Any, str]:
    """Started by an ``order.placed`` event; waits for its ``payment.completed`` event."""
    yield WaitEvent("payment.completed", match={"order_id": order.order_id}, timeout=3600)
    return f"order {order.order_id} paid"


def build(database: str) -> tuple[App, Starlette]:
    app = App(database, workflows=[fulfil])
    # one instance per order event; a redelivered event starts nothing new
    app.on_event("order.placed", fulfil, instance_id="order-{id}")

    async def health(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with app:  # starts the workers; stops them on shutdown
            yield

    web = Starlette(
        routes=[Route("/health", health), Mount("/events", app.asgi())], lifespan=lifespan
    )
    return app, web


if __name__ == "__main__":
    import uvicorn

    _, web = build(sys.argv[1] if len(sys.argv) > 1 else "sqlite:///orders.db")
    uvicorn.run(web, host="127.0.0.1", port=8000)

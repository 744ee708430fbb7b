"""The MCP tools over the streamable HTTP transport, served by a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import uvicorn
from mcp import Client

from replaykit.integrations.mcp import streamable_http_app
from replaykit.runtime.app import App

from .conftest import MakeApp
from .test_mcp import approval, order, price


@pytest.fixture
def served(sqlite_app: MakeApp) -> Iterator[str]:
    app: App = sqlite_app(workflows=[order, approval], activities=[price]).start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        streamable_http_app(app, [order]),
        host="127.0.0.1",
        port=port,
        lifespan="on",
        ws="none",
        http="h11",
        loop="asyncio",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        threading.Event().wait(0.01)
    assert server.started
    yield f"http://127.0.0.1:{port}/mcp"
    server.should_exit = True
    thread.join(10)
    assert not thread.is_alive()


@pytest.mark.anyio
async def test_tools_work_over_streamable_http(served: str) -> None:
    async with Client(served) as client:
        names = sorted(t.name for t in (await client.list_tools()).tools)
        assert names == ["order_cancel", "order_result", "order_start", "order_status"]
        started = await client.call_tool(
            "order_start", {"input": {"sku": "pen", "qty": 2}, "instance_id": "h1"}
        )
        assert not started.is_error
        result = await client.call_tool("order_result", {"instance_id": "h1", "wait_seconds": 10})
        assert result.structured_content == {
            "instance_id": "h1",
            "status": "completed",
            "result": {"sku": "pen", "total": 5.0},
        }
        bad = await client.call_tool("order_status", {"instance_id": "missing"})
        assert bad.is_error

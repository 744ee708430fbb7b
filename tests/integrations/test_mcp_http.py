"""The MCP tools over the streamable HTTP transport, served by a real uvicorn on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mcp import Client

from replaykit.integrations.mcp import streamable_http_app
from replaykit.runtime.app import App

from .conftest import MakeApp, serve_asgi
from .test_mcp import approval, order, price


@pytest.fixture
def served(sqlite_app: MakeApp) -> Iterator[str]:
    app: App = sqlite_app(workflows=[order, approval], activities=[price]).start()
    with serve_asgi(streamable_http_app(app, [order]), lifespan="on") as url:
        yield f"{url}/mcp"


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

"""The runnable examples under docs/examples/ (each documented in docs/integrations/)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from .fake_llm import ANTHROPIC, FakeLLM

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
pytestmark = pytest.mark.anyio


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_fastapi_app_example(sqlite_url: str) -> None:
    example = load("fastapi_app")
    app, web = example.build(sqlite_url)
    placed = {
        "specversion": "1.0",
        "id": "o1",
        "source": "/shop",
        "type": "order.placed",
        "data": {"order_id": "o1", "amount": 9.5},
    }
    paid = {**placed, "id": "p1", "type": "payment.completed", "data": {"order_id": "o1"}}
    headers = {"content-type": "application/cloudevents+json"}
    async with web.router.lifespan_context(web):
        transport = httpx.ASGITransport(app=web)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            assert (await c.get("/health")).json() == {"ok": True}
            assert (await c.post("/events", json=placed, headers=headers)).status_code == 202
            assert (await c.post("/events/", json=placed, headers=headers)).status_code == 202
            assert (await c.post("/events/", json=paid, headers=headers)).status_code == 202
        assert await app.result_async("order-o1", timeout=10) == "order o1 paid"
        assert len(app.list_instances()) == 1


def test_channels_broadcast_example(sqlite_url: str) -> None:
    result = load("channels_broadcast").main(sqlite_url)
    assert result["listeners"] == [["hello (en)", "bonjour (fr)"]] * 2
    assert result["jobs"] == list(range(6))


async def test_mcp_server_example_over_stdio(tmp_path: Path) -> None:
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable,
        args=[str(EXAMPLES / "mcp_server.py"), f"sqlite:///{tmp_path / 'mcp.db'}"],
        cwd=str(EXAMPLES.parents[1]),
        env={"PYTHONPATH": str(EXAMPLES.parents[1])},
    )
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {f"book_trip_{v}" for v in ("start", "status", "result", "cancel")}
        trip = {"input": {"destination": "Lisbon", "nights": 3}, "instance_id": "t1"}
        started = await client.call_tool("book_trip_start", trip)
        assert not started.is_error
        result = await client.call_tool(
            "book_trip_result", {"instance_id": "t1", "wait_seconds": 20}
        )
        assert result.structured_content == {
            "instance_id": "t1",
            "status": "completed",
            "result": {"reference": "LIS-3", "price": 240.0},
        }


def test_llm_agent_example(sqlite_url: str) -> None:
    fake = FakeLLM().start()
    try:
        fake.anthropic(
            {
                "type": "tool_use",
                "id": "r",
                "name": "respond",
                "input": {"category": "shipping", "urgent": False},
            },
            stop_reason="tool_use",
        )
        fake.anthropic(
            {"type": "tool_use", "id": "t1", "name": "order_status", "input": {"order_id": "o42"}},
            stop_reason="tool_use",
        )
        fake.anthropic({"type": "text", "text": "Order o42 has shipped."})
        example = load("llm_agent")
        options: dict[str, Any] = {"api_key": "test", "base_url": fake.url, "max_retries": 0}
        result = example.main(sqlite_url, "Where is o42?", "claude-test", **options)
        assert result == {
            "category": "shipping",
            "urgent": False,
            "answer": "Order o42 has shipped.",
        }
        assert len(fake.calls(ANTHROPIC)) == 3
        # the same question again is the same instance: answered from history, no model call
        assert example.main(sqlite_url, "Where is o42?", "claude-test", **options) == result
        assert len(fake.calls(ANTHROPIC)) == 3
    finally:
        fake.stop()
        from replaykit.integrations import llm

        llm.configure(None, llm.LLMConfig())

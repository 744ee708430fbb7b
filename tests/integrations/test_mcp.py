"""MCP tools over a real client session (in-process transport from the ``mcp`` package)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Generator
from typing import Any

import msgspec
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from replaykit import WaitEvent, activity, workflow
from replaykit.integrations.mcp import mcp_server
from replaykit.runtime.app import App

from .conftest import MakeApp

pytestmark = pytest.mark.anyio


class OrderInput(msgspec.Struct):
    sku: str
    qty: int


class OrderResult(msgspec.Struct):
    sku: str
    total: float


@activity
def price(ctx: Any, sku: str, qty: int) -> float:
    return 2.5 * qty


@workflow
def order(ctx: Any, o: OrderInput) -> Generator[Any, Any, OrderResult]:
    """Place an order for some units of a product."""
    total = yield price(o.sku, o.qty)
    return OrderResult(sku=o.sku, total=total)


@workflow
def approval(ctx: Any, who: str):  # type: ignore[no-untyped-def]
    """Wait for a human approval."""
    yield WaitEvent("approved", timeout=60)
    if who == "mallory":
        raise PermissionError(f"{who} may not be approved")
    return who


@pytest.fixture
def app(sqlite_app: MakeApp) -> App:
    return sqlite_app(workflows=[order, approval], activities=[price]).start()


@pytest.fixture
async def client(app: App) -> AsyncIterator[Client]:
    async with Client(mcp_server(app, [order, approval])) as c:
        yield c


async def test_four_tools_per_workflow_with_schemas_and_docs(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert sorted(tools) == sorted(
        f"{wf}_{verb}"
        for wf in ("order", "approval")
        for verb in ("start", "status", "result", "cancel")
    )
    start = tools["order_start"]
    assert "Place an order for some units of a product." in (start.description or "")
    assert start.input_schema["required"] == ["input"]
    ref = start.input_schema["properties"]["input"]["$ref"]
    assert ref == "#/$defs/OrderInput"
    assert start.input_schema["$defs"]["OrderInput"]["properties"] == {
        "sku": {"type": "string"},
        "qty": {"type": "integer"},
    }
    result_schema = tools["order_result"].output_schema
    assert result_schema is not None
    assert result_schema["$defs"]["OrderResult"]["required"] == ["sku", "total"]
    assert tools["approval_start"].input_schema["properties"]["input"]["type"] == "string"


async def test_start_status_result(client: Client) -> None:
    started = await client.call_tool(
        "order_start", {"input": {"sku": "book", "qty": 4}, "instance_id": "o1"}
    )
    assert not started.is_error
    assert started.structured_content is not None
    assert started.structured_content["instance_id"] == "o1"
    result = await client.call_tool("order_result", {"instance_id": "o1", "wait_seconds": 10})
    assert not result.is_error
    expected = {
        "instance_id": "o1",
        "status": "completed",
        "result": {"sku": "book", "total": 10.0},
    }
    assert result.structured_content == expected
    # not double-wrapped: the one text block is exactly the structured content
    [block] = result.content
    assert json.loads(block.text) == expected  # type: ignore[union-attr]
    status = await client.call_tool("order_status", {"instance_id": "o1"})
    assert status.structured_content is not None
    assert status.structured_content["status"] == "completed"
    assert status.structured_content["workflow"] == "order"


async def test_result_while_running_then_cancel(app: App, client: Client) -> None:
    await client.call_tool("approval_start", {"input": "bob", "instance_id": "a1"})
    pending = await client.call_tool("approval_result", {"instance_id": "a1"})
    assert not pending.is_error
    assert pending.structured_content is not None
    assert pending.structured_content["result"] is None
    assert pending.structured_content["status"] in ("pending", "running", "waiting")
    cancelled = await client.call_tool("approval_cancel", {"instance_id": "a1", "reason": "no"})
    assert not cancelled.is_error
    assert cancelled.structured_content is not None
    assert cancelled.structured_content["status"] == "cancelling"
    after = await client.call_tool("approval_result", {"instance_id": "a1", "wait_seconds": 10})
    assert after.is_error
    assert "cancelled" in after.content[0].text  # type: ignore[union-attr]
    assert app.status("a1").status == "cancelled"


async def test_failed_workflow_is_an_error_result(app: App, client: Client) -> None:
    await client.call_tool("approval_start", {"input": "mallory", "instance_id": "m"})
    await app.send_event_async("approved", instance_id="m")
    failed = await client.call_tool("approval_result", {"instance_id": "m", "wait_seconds": 10})
    assert failed.is_error
    assert failed.structured_content is None
    assert "PermissionError: mallory may not be approved" in failed.content[0].text  # type: ignore[union-attr]


async def test_unknown_or_foreign_instances_are_error_results(app: App, client: Client) -> None:
    missing = await client.call_tool("order_status", {"instance_id": "nope"})
    assert missing.is_error
    assert "nope" in missing.content[0].text  # type: ignore[union-attr]
    await client.call_tool("approval_start", {"input": "x", "instance_id": "ap"})
    foreign = await client.call_tool("order_result", {"instance_id": "ap"})
    assert foreign.is_error
    assert "'approval' instance" in foreign.content[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("tool", "arguments", "field"),
    [
        ("order_start", {}, "input"),
        ("order_start", {"input": {"sku": "book"}}, "input.qty"),
        ("order_start", {"input": {"sku": "book", "qty": "many"}}, "input.qty"),
        ("order_start", {"input": {"sku": "b", "qty": 1}, "instance_id": 5}, "instance_id"),
        ("order_status", {}, "instance_id"),
        ("order_status", {"instance_id": "x", "extra": 1}, "extra"),
        ("order_result", {"instance_id": "x", "wait_seconds": "soon"}, "wait_seconds"),
        ("order_result", {"instance_id": "x", "wait_seconds": 9999}, "wait_seconds"),
        ("order_cancel", {"instance_id": ""}, "instance_id"),
        # strict against the published schema: no coercion, no unknown fields inside input
        ("order_start", {"input": {"sku": "book", "qty": "2"}}, "input.qty"),
        ("order_start", {"input": {"sku": "book", "qty": True}}, "input.qty"),
        ("order_start", {"input": {"sku": "book", "qty": 2, "colour": "red"}}, "input.colour"),
        ("order_start", {"input": {"sku": "b", "qty": 1}, "instance_id": "x" * 256}, "instance_id"),
        ("order_start", {"input": {"sku": "b", "qty": 1}, "instance_id": "a\x00"}, "instance_id"),
        ("approval_start", {"input": 7}, "input"),
    ],
)
async def test_invalid_arguments_are_mcp_errors_naming_the_field(
    app: App, client: Client, tool: str, arguments: dict[str, Any], field: str
) -> None:
    with pytest.raises(MCPError) as info:
        await client.call_tool(tool, arguments)
    assert info.value.code == -32602
    assert f"field {field!r}" in info.value.message
    assert app.list_instances(workflow="order") == []
    # the session is still usable afterwards
    assert len((await client.list_tools()).tools) == 8


async def test_the_published_input_schema_is_closed_and_is_what_is_enforced(
    client: Client,
) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    schema = tools["order_start"].input_schema
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["OrderInput"]["additionalProperties"] is False
    assert schema["properties"]["instance_id"]["maxLength"] == 255
    started = await client.call_tool("order_start", {"input": {"sku": "b", "qty": 2.0}})
    assert not started.is_error  # 2.0 is an integer in JSON Schema (and in JSON)


async def test_unknown_tool_is_an_mcp_error(client: Client) -> None:
    with pytest.raises(MCPError, match="unknown tool"):
        await client.call_tool("nothing_start", {})


@workflow
def nightly(ctx: Any) -> Generator[Any, Any, str]:
    """Run the nightly job."""
    return "done"
    yield  # pragma: no cover


async def test_the_start_tool_of_a_workflow_that_takes_no_input_refuses_an_input(
    sqlite_app: MakeApp,
) -> None:
    app = sqlite_app(workflows=[nightly]).start()
    async with Client(mcp_server(app, [nightly])) as c:
        tool = {t.name: t for t in (await c.list_tools()).tools}["nightly_start"]
        assert "input" not in tool.input_schema["properties"]
        for given in ({"x": 1}, None, 0):
            with pytest.raises(MCPError) as info:
                await c.call_tool("nightly_start", {"input": given})
            assert info.value.code == -32602 and "field 'input'" in info.value.message
        assert app.list_instances(workflow="nightly") == []
        started = await c.call_tool("nightly_start", {"instance_id": "n1"})
        assert not started.is_error
    assert app.result("n1", timeout=10) == "done"

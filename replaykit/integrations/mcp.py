"""Expose workflows as MCP tools (the ``mcp`` extra: ``pip install 'replaykit-durable[mcp]'``).

Each workflow ``name`` becomes four tools:

* ``{name}_start``  ``{"input": ..., "instance_id"?: str}`` → ``{"instance_id", "status"}``
* ``{name}_status`` ``{"instance_id"}`` → ``{"instance_id", "workflow", "status", ...}``
* ``{name}_result`` ``{"instance_id", "wait_seconds"?: number}`` → ``{"instance_id", "status",
  "result"}`` (``result`` is null while the instance still runs)
* ``{name}_cancel`` ``{"instance_id", "reason"?: str}`` → ``{"instance_id", "status"}``

Input and output schemas come from the workflow's annotated input and return types
(``msgspec.json.schema``); descriptions from its docstring. Invalid arguments are an MCP protocol
error (``INVALID_PARAMS``) naming the field; a failed, cancelled or unknown instance is a tool
result with ``isError: true``. Results are sent once, as ``structuredContent`` plus the same JSON
as text: never wrapped twice.

>>> server = mcp_server(app, [order])              # an mcp.server.Server
>>> run_stdio(app, [order])                        # serve over stdin/stdout
>>> api = streamable_http_app(app, [order])        # Starlette app, POST /mcp
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
import msgspec
from mcp import types
from mcp.server import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette

from ..core.codec import to_builtins
from ..core.definitions import Workflow
from ..core.errors import InvalidInput, ReplayKitError, WorkflowFailed
from ..runtime.app import App
from ..storage import INSTANCE_STATUSES, TERMINAL_STATUSES, InstanceRecord

ToolHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
_PATH = re.compile(r"at `\$(?P<path>[^`]*)`")
_MISSING = re.compile(r"missing required field `(?P<field>[^`]+)`")
_ID = {"type": "string", "minLength": 1, "description": "the workflow instance id"}
_STATUS = {
    "type": "string",
    "enum": list(INSTANCE_STATUSES),
}
_STATUS_PROPS = {
    "instance_id": _ID,
    "workflow": {"type": "string"},
    "status": _STATUS,
    "run": {"type": "integer"},
    "created_at": {"type": "number", "description": "POSIX seconds"},
    "updated_at": {"type": "number", "description": "POSIX seconds"},
    "error": {"description": "the failure (type and message) of a failed/cancelled instance"},
}


def _schema(tp: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(schema, $defs) for an annotated type; unknown or Any: any JSON value."""
    if tp is None or tp is Any:
        return {}, {}
    try:
        schema = msgspec.json.schema(tp)
    except (TypeError, ValueError):
        return {}, {}
    defs = schema.pop("$defs", {})
    return schema, defs


def _object(
    props: dict[str, Any], required: list[str], defs: dict[str, Any], *, closed: bool = True
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props, "required": required}
    if closed:
        schema["additionalProperties"] = False
    if defs:
        schema["$defs"] = defs
    return schema


class _Tool:
    def __init__(self, tool: types.Tool, handler: ToolHandler, fields: dict[str, Any]) -> None:
        self.tool = tool
        self.handler = handler
        self.fields = fields  # argument name -> expected python type (None: any)
        self.required = list(tool.input_schema.get("required", []))


class WorkflowTools:
    """The four tools of each workflow, bound to ``app``."""

    def __init__(self, app: App, workflows: Iterable[Workflow[Any, Any] | str] | None = None):
        self.app = app
        chosen = list(app.registry.workflows.values()) if workflows is None else list(workflows)
        self.tools: dict[str, _Tool] = {}
        for wf in chosen:
            self._add(app.registry.workflow(wf) if isinstance(wf, str) else wf)

    def _add(self, wf: Workflow[Any, Any]) -> None:
        if self.app.registry.workflows.get(wf.name) is not wf:
            self.app.register(wf)
        doc = " ".join((wf.__doc__ or "").split()) or f"the {wf.name} workflow"
        in_schema, in_defs = _schema(wf.input_type) if wf.takes_input else ({}, {})
        out_schema, out_defs = _schema(wf.result_type)
        start_props: dict[str, Any] = {
            "instance_id": {**_ID, "description": "optional id; starting twice is idempotent"}
        }
        if wf.takes_input:
            start_props["input"] = {**in_schema, "description": "the workflow input"}
        id_out = _object({"instance_id": _ID, "status": _STATUS}, ["instance_id", "status"], {})
        result_out = _object(
            {
                "instance_id": _ID,
                "status": _STATUS,
                "result": {"anyOf": [out_schema, {"type": "null"}]} if out_schema else {},
            },
            ["instance_id", "status", "result"],
            out_defs,
        )
        wait = {"type": "number", "minimum": 0, "maximum": 300, "description": "seconds to wait"}
        reason = {"type": "string", "description": "why (recorded in the instance)"}
        specs: list[
            tuple[str, str, dict[str, Any], dict[str, Any], ToolHandler, dict[str, Any]]
        ] = [
            (
                "start",
                f"Start {wf.name}: {doc}",
                _object(start_props, ["input"] if wf.takes_input else [], in_defs),
                id_out,
                lambda args: self._start(wf, args),
                {"instance_id": str, "input": None},
            ),
            (
                "status",
                f"Status of a {wf.name} instance (pending, running, waiting, completed, ...).",
                _object({"instance_id": _ID}, ["instance_id"], {}),
                _object(_STATUS_PROPS, ["instance_id", "workflow", "status"], {}, closed=False),
                lambda args: self._status(wf, args),
                {"instance_id": str},
            ),
            (
                "result",
                f"Result of a {wf.name} instance; waits up to wait_seconds. {doc}",
                _object({"instance_id": _ID, "wait_seconds": wait}, ["instance_id"], {}),
                result_out,
                lambda args: self._result(wf, args),
                {"instance_id": str, "wait_seconds": (int, float)},
            ),
            (
                "cancel",
                f"Cancel a {wf.name} instance; its compensations run.",
                _object({"instance_id": _ID, "reason": reason}, ["instance_id"], {}),
                id_out,
                lambda args: self._cancel(wf, args),
                {"instance_id": str, "reason": str},
            ),
        ]
        for verb, description, schema, output, handler, fields in specs:
            name = f"{wf.name}_{verb}"
            tool = types.Tool(
                name=name, description=description, input_schema=schema, output_schema=output
            )
            self.tools[name] = _Tool(tool, handler, fields)

    # ---------------------------------------------------------------- tool bodies

    async def _start(self, wf: Workflow[Any, Any], args: dict[str, Any]) -> dict[str, Any]:
        value = args.get("input")
        if wf.takes_input:
            try:
                value = wf.decode_input(value)
            except InvalidInput as exc:
                raise _invalid(f"{wf.name}_start", _field("input", str(exc)), str(exc)) from None
        handle = await self.app.start_workflow_async(wf, value, instance_id=args.get("instance_id"))
        record = await asyncio.to_thread(self.app.status, handle.instance_id)
        return {"instance_id": handle.instance_id, "status": record.status}

    async def _record(self, wf: Workflow[Any, Any], instance_id: str) -> InstanceRecord:
        record = await asyncio.to_thread(self.app.status, instance_id)
        if record.workflow != wf.name:
            raise ToolFailed(
                f"instance {instance_id!r} is a {record.workflow!r} instance, not {wf.name!r}"
            )
        return record

    async def _status(self, wf: Workflow[Any, Any], args: dict[str, Any]) -> dict[str, Any]:
        record = await self._record(wf, args["instance_id"])
        found = {
            "instance_id": record.instance_id,
            "workflow": record.workflow,
            "status": record.status,
            "run": record.run,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }
        if record.error is not None:
            found["error"] = record.error
        return found

    async def _result(self, wf: Workflow[Any, Any], args: dict[str, Any]) -> dict[str, Any]:
        instance_id = args["instance_id"]
        await self._record(wf, instance_id)
        try:
            value = await self.app.result_async(instance_id, timeout=args.get("wait_seconds", 0))
        except TimeoutError:
            record = await self._record(wf, instance_id)
            if record.status in TERMINAL_STATUSES:  # finished right at the deadline
                return await self._result(wf, {"instance_id": instance_id})
            return {"instance_id": instance_id, "status": record.status, "result": None}
        except WorkflowFailed as exc:
            raise ToolFailed(str(exc)) from None
        result = to_builtins(value, what=f"result of {wf.name}")
        return {"instance_id": instance_id, "status": "completed", "result": result}

    async def _cancel(self, wf: Workflow[Any, Any], args: dict[str, Any]) -> dict[str, Any]:
        await self._record(wf, args["instance_id"])
        reason = args.get("reason") or "cancelled through MCP"
        record = await self.app.cancel_async(args["instance_id"], reason)
        return {"instance_id": record.instance_id, "status": record.status}

    # ---------------------------------------------------------------- MCP handlers

    async def list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[t.tool for t in self.tools.values()])

    async def call_tool(
        self, ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        tool = self.tools.get(params.name)
        if tool is None:
            raise MCPError(types.INVALID_PARAMS, f"unknown tool {params.name!r}")
        args = dict(params.arguments or {})
        _check_arguments(params.name, tool, args)
        try:
            found = await tool.handler(args)
        except (ToolFailed, ReplayKitError) as exc:
            if isinstance(exc, InvalidInput):
                raise _invalid(params.name, "input", str(exc)) from None
            return types.CallToolResult(content=[types.TextContent(text=str(exc))], is_error=True)
        text = msgspec.json.encode(found).decode()
        return types.CallToolResult(
            content=[types.TextContent(text=text)], structured_content=found
        )


class ToolFailed(ReplayKitError):
    """A tool ran but could not do what was asked (reported with ``isError: true``)."""


def _field(prefix: str, message: str) -> str:
    path = _PATH.search(message)
    missing = _MISSING.search(message)
    where = path.group("path") if path else ""
    if missing:
        where = f"{where}.{missing.group('field')}"
    return f"{prefix}{where}"


def _invalid(tool: str, field: str, message: str) -> MCPError:
    return MCPError(
        types.INVALID_PARAMS,
        f"invalid arguments for {tool}: field {field!r}: {message}",
        data={"field": field},
    )


def _check_arguments(name: str, tool: _Tool, args: dict[str, Any]) -> None:
    for key in tool.required:
        if key not in args:
            raise _invalid(name, key, "this field is required")
    for key, value in args.items():
        if key not in tool.fields:
            raise _invalid(name, key, f"unknown field; expected one of {sorted(tool.fields)}")
        expected = tool.fields[key]
        if expected is None:
            continue
        if not isinstance(value, expected) or isinstance(value, bool) or value == "":
            raise _invalid(name, key, f"must be {_type_name(expected)}, got {value!r}")
    wait = args.get("wait_seconds", 0)
    if not 0 <= wait <= 300:
        raise _invalid(name, "wait_seconds", "must be between 0 and 300")


def _type_name(expected: type | tuple[type, ...]) -> str:
    if isinstance(expected, tuple):
        return "a number"
    return "a non-empty string" if expected is str else expected.__name__


def mcp_server(
    app: App,
    workflows: Iterable[Workflow[Any, Any] | str] | None = None,
    *,
    name: str = "replaykit",
) -> Server[Any]:
    """An MCP server (``mcp.server.Server``) with four tools per workflow (default: all
    registered with ``app``)."""
    tools = WorkflowTools(app, workflows)
    return Server(
        name,
        instructions="Start durable workflows and follow their instances.",
        on_list_tools=tools.list_tools,
        on_call_tool=tools.call_tool,
    )


def run_stdio(
    app: App,
    workflows: Iterable[Workflow[Any, Any] | str] | None = None,
    *,
    name: str = "replaykit",
) -> None:
    """Serve the tools over stdin/stdout until the client closes them (starts ``app``)."""
    server = mcp_server(app, workflows, name=name)

    async def serve() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    with app:
        anyio.run(serve)


def streamable_http_app(
    app: App,
    workflows: Iterable[Workflow[Any, Any] | str] | None = None,
    *,
    name: str = "replaykit",
    path: str = "/mcp",
    host: str = "127.0.0.1",
) -> Starlette:
    """The tools over MCP's streamable HTTP transport, as a Starlette app (serve with uvicorn).

    ``host`` is where it is served: for localhost, DNS-rebinding protection is on.
    """
    server = mcp_server(app, workflows, name=name)
    return server.streamable_http_app(streamable_http_path=path, host=host)


__all__ = ["ToolFailed", "WorkflowTools", "mcp_server", "run_stdio", "streamable_http_app"]

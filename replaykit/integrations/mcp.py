"""Expose workflows as MCP tools (the ``mcp`` extra: ``pip install 'replaykit-durable[mcp]'``).

Each workflow ``name`` becomes four tools:

* ``{name}_start``  ``{"input": ..., "instance_id"?: str}`` → ``{"instance_id", "status"}``
* ``{name}_status`` ``{"instance_id"}`` → ``{"instance_id", "workflow", "status", ...}``
* ``{name}_result`` ``{"instance_id", "wait_seconds"?: number}`` → ``{"instance_id", "status",
  "result"}`` (``result`` is null while the instance still runs)
* ``{name}_cancel`` ``{"instance_id", "reason"?: str}`` → ``{"instance_id", "status"}``

Input and output schemas come from the workflow's annotated input and return types
(``msgspec.json.schema``, objects closed: ``additionalProperties: false``); descriptions from its
docstring. Arguments are validated strictly against the published input schema
(``jsonschema``): ``"2"`` is not an integer and an unknown field is refused, also inside
``input``. Invalid arguments are an MCP protocol error (``INVALID_PARAMS``) naming the field; a
failed, cancelled or unknown instance is a tool result with ``isError: true``. Results are sent
once, as ``structuredContent`` plus the same JSON as text: never wrapped twice.

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
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from mcp import types
from mcp.server import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette

from ..core.codec import to_builtins
from ..core.definitions import Workflow
from ..core.errors import InvalidInput, ReplayKitError, WorkflowFailed
from ..core.validation import MAX_ID_LENGTH
from ..runtime.app import App
from ..storage import INSTANCE_STATUSES, TERMINAL_STATUSES, InstanceRecord

ToolHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
_PATH = re.compile(r"at `\$(?P<path>[^`]*)`")
_MISSING = re.compile(r"missing required field `(?P<field>[^`]+)`")
_ID = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_ID_LENGTH,
    "description": "the workflow instance id",
}
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
    return _closed(schema), {name: _closed(d) for name, d in defs.items()}


def _closed(schema: Any) -> Any:
    """``schema`` with every object that lists its properties closed to other properties (as
    the published schema promises, unknown fields inside ``input`` are refused)."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _closed(value) for key, value in schema.items()}
    if "properties" in closed and "additionalProperties" not in closed:
        closed["additionalProperties"] = False
    return closed


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
    def __init__(self, tool: types.Tool, handler: ToolHandler) -> None:
        self.tool = tool
        self.handler = handler
        Draft202012Validator.check_schema(tool.input_schema)
        self.validator = Draft202012Validator(tool.input_schema)


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
        specs: list[tuple[str, str, dict[str, Any], dict[str, Any], ToolHandler]] = [
            (
                "start",
                f"Start {wf.name}: {doc}",
                _object(start_props, ["input"] if wf.takes_input else [], in_defs),
                id_out,
                lambda args: self._start(wf, args),
            ),
            (
                "status",
                f"Status of a {wf.name} instance (pending, running, waiting, completed, ...).",
                _object({"instance_id": _ID}, ["instance_id"], {}),
                _object(_STATUS_PROPS, ["instance_id", "workflow", "status"], {}, closed=False),
                lambda args: self._status(wf, args),
            ),
            (
                "result",
                f"Result of a {wf.name} instance; waits up to wait_seconds. {doc}",
                _object({"instance_id": _ID, "wait_seconds": wait}, ["instance_id"], {}),
                result_out,
                lambda args: self._result(wf, args),
            ),
            (
                "cancel",
                f"Cancel a {wf.name} instance; its compensations run.",
                _object({"instance_id": _ID, "reason": reason}, ["instance_id"], {}),
                id_out,
                lambda args: self._cancel(wf, args),
            ),
        ]
        for verb, description, schema, output, handler in specs:
            name = f"{wf.name}_{verb}"
            tool = types.Tool(
                name=name, description=description, input_schema=schema, output_schema=output
            )
            self.tools[name] = _Tool(tool, handler)

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
                raise _invalid(params.name, exc.argument or "input", str(exc)) from None
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
    """Validate ``args`` against the tool's published input schema; INVALID_PARAMS naming the
    first field at fault."""
    error = best_match(tool.validator.iter_errors(args))
    if error is not None:
        raise _invalid(name, _error_field(error), error.message)


def _error_field(error: ValidationError) -> str:
    """The dotted path of the field ``error`` is about (a missing or unexpected one included)."""
    path = [str(part) for part in error.absolute_path]
    instance = error.instance if isinstance(error.instance, dict) else {}
    if error.validator == "required" and isinstance(error.validator_value, list):
        path += [key for key in error.validator_value if key not in instance][:1]
    elif error.validator == "additionalProperties":
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        path += [key for key in instance if key not in known][:1]
    return ".".join(path)


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

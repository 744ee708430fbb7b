"""Provider-neutral LLM messages, requests and responses (msgspec Structs, recorded in history)."""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

import msgspec


class ToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """The model asks to call tool ``name`` with ``arguments``."""

    id: str
    name: str
    arguments: dict[str, Any] = {}


class ChatMessage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One message of a conversation; ``role="tool"`` carries the result for ``tool_call_id``."""

    role: Literal["user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = []
    tool_call_id: str | None = None
    is_error: bool = False


class ToolSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A tool the model may call: name, description and a JSON schema of its arguments."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = {}


class OutputSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Ask for a JSON answer matching ``schema`` (structured output)."""

    name: str
    schema: dict[str, Any]


class LLMRequest(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What an LLM call sends. ``None`` fields take the App's defaults (``LLMConfig``) when the
    call runs, so changing a default never changes recorded history."""

    messages: list[ChatMessage]
    provider: str | None = None
    model: str | None = None
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    tools: list[ToolSpec] = []
    output: OutputSpec | None = None
    params: dict[str, Any] = {}


class LLMResponse(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What came back: text, tool calls, or (structured output) ``data``."""

    text: str = ""
    tool_calls: list[ToolCall] = []
    data: Any = None
    stop_reason: str = ""
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0


@runtime_checkable
class Provider(Protocol):
    """An LLM API: turns a request (defaults already filled in) into a response."""

    def complete(self, request: LLMRequest) -> LLMResponse: ...


def object_schema(tp: Any) -> tuple[dict[str, Any], bool]:
    """A JSON schema with ``type: object`` at the root for ``tp``, and whether a non-object type
    was wrapped as ``{"value": ...}``."""
    schema = msgspec.json.schema(tp)
    defs: dict[str, Any] = schema.pop("$defs", {})
    ref = schema.get("$ref", "")
    if ref.startswith("#/$defs/"):
        schema = dict(defs[ref.removeprefix("#/$defs/")])
    wrapped = schema.get("type") != "object"
    if wrapped:
        schema = {
            "type": "object",
            "properties": {"value": schema},
            "required": ["value"],
        }
    if defs:
        schema["$defs"] = defs
    return schema, wrapped


__all__ = [
    "ChatMessage",
    "LLMRequest",
    "LLMResponse",
    "OutputSpec",
    "Provider",
    "ToolCall",
    "ToolSpec",
    "object_schema",
]

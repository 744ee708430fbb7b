"""Adapters for the official ``anthropic`` and ``openai`` SDKs (imported lazily: optional extras).

>>> AnthropicProvider()                                  # ANTHROPIC_API_KEY from the environment
>>> OpenAIProvider(base_url="http://127.0.0.1:8080/v1")  # any OpenAI-compatible server
>>> AnthropicProvider(client=anthropic.Anthropic(...))   # or bring your own client
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from .types import ChatMessage, LLMRequest, LLMResponse, ToolCall

STRUCTURED_TOOL = "respond"


def _accepts(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _attr(obj: Any, name: str, default: Any = None) -> Any:
    return getattr(obj, name, default) if obj is not None else default


class AnthropicProvider:
    """Anthropic Messages API. Structured output is a forced tool call (``respond``)."""

    name = "anthropic"

    def __init__(self, client: Any = None, **client_options: Any) -> None:
        if client is None:
            import anthropic

            client = anthropic.Anthropic(**client_options)
        self.client = client

    def complete(self, request: LLMRequest) -> LLMResponse:
        kwargs: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": self.messages(request.messages),
            **request.params,
        }
        if request.system:
            kwargs["system"] = request.system
        if request.temperature is not None and _accepts(self.client.messages.create, "temperature"):
            kwargs["temperature"] = request.temperature  # newer SDKs dropped it for some models
        tools = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in request.tools
        ]
        if request.output is not None:
            tools.append(
                {
                    "name": STRUCTURED_TOOL,
                    "description": f"Answer with a {request.output.name} object.",
                    "input_schema": request.output.schema,
                }
            )
            kwargs["tool_choice"] = {"type": "tool", "name": STRUCTURED_TOOL}
        if tools:
            kwargs["tools"] = tools
        return self.response(self.client.messages.create(**kwargs), request)

    @staticmethod
    def messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for m in messages:
            if m.role == "tool":
                block = {
                    "type": "tool_result",
                    "tool_use_id": m.tool_call_id,
                    "content": m.content,
                    "is_error": m.is_error,
                }
                if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                    out[-1]["content"].append(block)  # results of one turn go in one message
                else:
                    out.append({"role": "user", "content": [block]})
            elif m.role == "assistant" and m.tool_calls:
                blocks: list[dict[str, Any]] = (
                    [{"type": "text", "text": m.content}] if m.content else []
                )
                blocks += [
                    {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                    for c in m.tool_calls
                ]
                out.append({"role": "assistant", "content": blocks})
            else:
                out.append({"role": m.role, "content": m.content})
        return out

    @staticmethod
    def response(message: Any, request: LLMRequest) -> LLMResponse:
        text: list[str] = []
        calls: list[ToolCall] = []
        data: Any = None
        for block in _attr(message, "content", []) or []:
            kind = _attr(block, "type")
            if kind == "text":
                text.append(_attr(block, "text", ""))
            elif kind == "tool_use":
                name, args = _attr(block, "name", ""), dict(_attr(block, "input", {}) or {})
                if request.output is not None and name == STRUCTURED_TOOL:
                    data = args
                else:
                    calls.append(ToolCall(id=_attr(block, "id", ""), name=name, arguments=args))
        usage = _attr(message, "usage")
        return LLMResponse(
            text="".join(text),
            tool_calls=calls,
            data=data,
            stop_reason=str(_attr(message, "stop_reason", "") or ""),
            model=str(_attr(message, "model", "") or ""),
            input_tokens=int(_attr(usage, "input_tokens", 0) or 0),
            output_tokens=int(_attr(usage, "output_tokens", 0) or 0),
        )

    def close(self) -> None:
        self.client.close()


class OpenAIProvider:
    """OpenAI Chat Completions API. Structured output uses ``response_format: json_schema``."""

    name = "openai"

    def __init__(self, client: Any = None, **client_options: Any) -> None:
        if client is None:
            import openai

            client = openai.OpenAI(**client_options)
        self.client = client

    def complete(self, request: LLMRequest) -> LLMResponse:
        messages = self.messages(request.messages)
        if request.system:
            messages.insert(0, {"role": "system", "content": request.system})
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "max_completion_tokens": request.max_tokens,
            **request.params,
        }
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.tools:
            kwargs["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in request.tools
            ]
        if request.output is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": request.output.name, "schema": request.output.schema},
            }
        return self.response(self.client.chat.completions.create(**kwargs), request)

    @staticmethod
    def messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for m in messages:
            if m.role == "tool":
                out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
            elif m.role == "assistant" and m.tool_calls:
                calls = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                    }
                    for c in m.tool_calls
                ]
                out.append({"role": "assistant", "content": m.content or None, "tool_calls": calls})
            else:
                out.append({"role": m.role, "content": m.content})
        return out

    @staticmethod
    def response(completion: Any, request: LLMRequest) -> LLMResponse:
        choice = (_attr(completion, "choices", []) or [None])[0]
        message = _attr(choice, "message")
        text = str(_attr(message, "content", "") or "")
        calls = [
            ToolCall(
                id=str(_attr(c, "id", "")),
                name=str(_attr(_attr(c, "function"), "name", "")),
                arguments=json.loads(_attr(_attr(c, "function"), "arguments", "") or "{}"),
            )
            for c in _attr(message, "tool_calls", []) or []
        ]
        data = json.loads(text) if request.output is not None and text else None
        usage = _attr(completion, "usage")
        return LLMResponse(
            text=text,
            tool_calls=calls,
            data=data,
            stop_reason=str(_attr(choice, "finish_reason", "") or ""),
            model=str(_attr(completion, "model", "") or ""),
            input_tokens=int(_attr(usage, "prompt_tokens", 0) or 0),
            output_tokens=int(_attr(usage, "completion_tokens", 0) or 0),
        )

    def close(self) -> None:
        self.client.close()


__all__ = ["AnthropicProvider", "OpenAIProvider"]

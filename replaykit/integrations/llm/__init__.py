"""Durable LLM calls: each call is an activity, so its response is recorded and a replay never
calls the model again.

>>> configure(app, LLMConfig(provider=AnthropicProvider(), model="claude-sonnet-4-5"))
>>> @workflow
... def triage(ctx, ticket: str):
...     summary = yield from prompt(f"Summarise: {ticket}")          # -> str
...     verdict = yield from structured(f"Classify: {ticket}", Verdict)  # -> Verdict
...     reply = yield from agent(f"Answer: {ticket}", tools=[lookup_order])  # tools are activities
...     return reply.text

A call runs as the activity ``replaykit.llm.complete`` (non-transactional, retried with backoff).
Unset request fields (provider, model, max tokens) take the ``LLMConfig`` defaults *when the call
runs*, so changing a default never breaks the replay of running instances. Use :class:`LLMCall`
for a reusable definition (model, system prompt, parameters).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_type_hints

import msgspec

from ...core.commands import ActivityCall, Command
from ...core.definitions import Activity, activity
from ...core.errors import TerminalError, WorkflowCancelled
from ...core.retry import RetryPolicy
from ...runtime.app import App
from .providers import AnthropicProvider, OpenAIProvider
from .types import (
    ChatMessage,
    LLMRequest,
    LLMResponse,
    OutputSpec,
    Provider,
    ToolCall,
    ToolSpec,
    object_schema,
)

T = TypeVar("T")
MessageLike = ChatMessage | dict[str, Any]
_NOT_RETRYABLE = tuple(
    f"{sdk}._exceptions.{name}"
    for sdk in ("anthropic", "openai")
    for name in (
        "BadRequestError",
        "AuthenticationError",
        "PermissionDeniedError",
        "NotFoundError",
        "UnprocessableEntityError",
    )
)


@dataclass
class LLMConfig:
    """Defaults for LLM calls in this process: the provider (and named extra ones), the model,
    the max tokens and the retry policy of the call activity."""

    provider: Provider | None = None
    model: str | None = None
    max_tokens: int = 1024
    providers: dict[str, Provider] = field(default_factory=dict)

    def resolve(self, request: LLMRequest) -> tuple[Provider, LLMRequest]:
        """The provider for ``request`` and the request with every default filled in."""
        provider = self.providers.get(request.provider) if request.provider else self.provider
        if provider is None:
            raise TerminalError(
                f"no LLM provider {request.provider or '(default)'!r} is configured; "
                "call replaykit.integrations.llm.configure(app, LLMConfig(provider=...))"
            )
        model = request.model or self.model
        if not model:
            raise TerminalError("no model given and LLMConfig.model is not set")
        filled = msgspec.structs.replace(
            request, model=model, max_tokens=request.max_tokens or self.max_tokens
        )
        return provider, filled


_config = LLMConfig()


def configure(app: App | None, config: LLMConfig) -> LLMConfig:
    """Make ``config`` the defaults of this process and register the LLM activity with ``app``."""
    global _config
    _config = config
    if app is not None:
        app.register(complete)
    return config


def current_config() -> LLMConfig:
    return _config


@activity(
    name="replaykit.llm.complete",
    transactional=False,
    retry=RetryPolicy(max_attempts=4, initial_interval=1.0, non_retryable=_NOT_RETRYABLE),
)
def complete(ctx: Any, request: LLMRequest) -> LLMResponse:
    """Call the model (the recorded activity behind every LLM call)."""
    if not isinstance(request, LLMRequest):
        request = msgspec.convert(request, LLMRequest)
    provider, filled = _config.resolve(request)
    return provider.complete(filled)


class AgentResult(msgspec.Struct, frozen=True, kw_only=True):
    """The end of an agent loop: the final text, the whole conversation and the turns taken."""

    text: str
    messages: list[ChatMessage]
    turns: int
    finished: bool = True


def _messages(items: str | Sequence[MessageLike]) -> list[ChatMessage]:
    if isinstance(items, str):
        return [ChatMessage(role="user", content=items)]
    return [m if isinstance(m, ChatMessage) else msgspec.convert(m, ChatMessage) for m in items]


@functools.cache
def _tool_args_type(act: Activity[Any, Any]) -> type[msgspec.Struct]:
    """The arguments of ``act`` as a Struct (built once per activity: every tool call uses it)."""
    hints = get_type_hints(act.fn)
    params = list(inspect.signature(act.fn).parameters.values())[1 if act.takes_ctx else 0 :]
    fields: list[Any] = [
        (p.name, hints.get(p.name, Any))
        if p.default is inspect.Parameter.empty
        else (p.name, hints.get(p.name, Any), p.default)
        for p in params
    ]
    return msgspec.defstruct(
        f"{act.name}_arguments", fields, kw_only=True, forbid_unknown_fields=True
    )


def tool_spec(act: Activity[Any, Any]) -> ToolSpec:
    """The tool an activity offers to a model: its name, docstring and argument schema."""
    schema, _ = object_schema(_tool_args_type(act))
    doc = " ".join((act.__doc__ or "").split())
    return ToolSpec(name=act.name, description=doc, parameters=schema)


class LLMCall(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A reusable call definition: provider, model, system prompt and parameters.

    >>> summarise = LLMCall(model="gpt-4o-mini", system="You summarise tickets.", temperature=0)
    >>> text = yield from summarise.prompt(ticket)
    """

    provider: str | None = None
    model: str | None = None
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    params: dict[str, Any] = {}

    def request(self, messages: str | Sequence[MessageLike], **fields: Any) -> LLMRequest:
        return LLMRequest(
            messages=_messages(messages),
            provider=self.provider,
            model=self.model,
            system=self.system,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            params=dict(self.params),
            **fields,
        )

    def complete(
        self, messages: str | Sequence[MessageLike], **fields: Any
    ) -> ActivityCall[LLMResponse]:
        """The recorded call itself: ``response = yield from call.complete(messages)``."""
        return complete(self.request(messages, **fields))

    def prompt(self, text: str) -> Generator[Command, Any, str]:
        """A single prompt; returns the text of the answer."""
        response = yield from self.complete(text)
        return response.text

    def chat(self, messages: Sequence[MessageLike]) -> Generator[Command, Any, str]:
        """A multi-turn conversation (user/assistant messages); returns the next answer's text."""
        response = yield from self.complete(messages)
        return response.text

    def structured(
        self, messages: str | Sequence[MessageLike], type: type[T]
    ) -> Generator[Command, Any, T]:
        """An answer parsed into ``type`` (msgspec Struct, dataclass, ...); the JSON schema goes
        to the model as a forced tool (Anthropic) or ``response_format`` (OpenAI)."""
        schema, wrapped = object_schema(type)
        name = getattr(type, "__name__", "answer")
        output = OutputSpec(name=name, schema=schema)
        response = yield from self.complete(messages, output=output)
        data = response.data
        if wrapped and isinstance(data, dict):
            data = data.get("value")
        try:
            return msgspec.convert(data, type, strict=False)
        except msgspec.ValidationError as exc:
            raise TerminalError(f"the model's answer does not match {name}: {exc}") from None

    def agent(
        self,
        messages: str | Sequence[MessageLike],
        tools: Sequence[Activity[Any, Any]] = (),
        *,
        max_turns: int = 10,
    ) -> Generator[Command, Any, AgentResult]:
        """A multi-turn loop: the model answers or calls tools; each tool call runs as its
        activity (recorded), its result goes back to the model, until it answers in text."""
        by_name = {t.name: t for t in tools}
        specs = [tool_spec(t) for t in tools]
        conversation = _messages(messages)
        for turn in range(1, max_turns + 1):
            response = yield from self.complete(conversation, tools=specs)
            conversation.append(
                ChatMessage(role="assistant", content=response.text, tool_calls=response.tool_calls)
            )
            if not response.tool_calls:
                return AgentResult(text=response.text, messages=conversation, turns=turn)
            for call in response.tool_calls:
                result = yield from _run_tool(by_name, call)
                conversation.append(result)
        return AgentResult(text="", messages=conversation, turns=max_turns, finished=False)


def _run_tool(
    tools: dict[str, Activity[Any, Any]], call: ToolCall
) -> Generator[Command, Any, ChatMessage]:
    def reply(content: str, is_error: bool = False) -> ChatMessage:
        return ChatMessage(role="tool", content=content, tool_call_id=call.id, is_error=is_error)

    tool = tools.get(call.name)
    if tool is None:
        return reply(f"unknown tool {call.name!r}; available: {sorted(tools)}", True)
    try:
        args = msgspec.convert(call.arguments, _tool_args_type(tool), strict=False)
    except msgspec.ValidationError as exc:
        return reply(f"invalid arguments for {call.name}: {exc}", True)
    kwargs = {f: getattr(args, f) for f in args.__struct_fields__}
    try:
        value = yield tool(**kwargs)
    except WorkflowCancelled:
        raise
    except Exception as exc:  # the activity failed after its retries: tell the model
        return reply(f"{type(exc).__name__}: {exc}", True)
    return reply(msgspec.json.encode(value).decode())


_default = LLMCall()
prompt = _default.prompt
chat = _default.chat
structured = _default.structured
agent = _default.agent

__all__ = [
    "AgentResult",
    "AnthropicProvider",
    "ChatMessage",
    "LLMCall",
    "LLMConfig",
    "LLMRequest",
    "LLMResponse",
    "OpenAIProvider",
    "Provider",
    "ToolCall",
    "ToolSpec",
    "agent",
    "chat",
    "complete",
    "configure",
    "current_config",
    "prompt",
    "structured",
    "tool_spec",
]

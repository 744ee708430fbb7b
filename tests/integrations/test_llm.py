"""Durable LLM calls through the real ``anthropic`` and ``openai`` SDKs against a local fake
server: the first run calls the server; after a crash (a new App on the same database) the
recorded responses are replayed and the server is not called again."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from typing import Any

import msgspec
import pytest

from replaykit import WaitEvent, activity, workflow
from replaykit.core.definitions import Registry
from replaykit.integrations import llm
from replaykit.integrations.llm import (
    AnthropicProvider,
    ChatMessage,
    LLMCall,
    LLMConfig,
    OpenAIProvider,
)
from replaykit.runtime.app import App

from .fake_llm import ANTHROPIC, OPENAI, FakeLLM

TOOL_CALLS: list[str] = []


class Verdict(msgspec.Struct):
    category: str
    urgent: bool


@activity
def lookup_order(ctx: Any, order_id: str) -> dict[str, Any]:
    """Look up an order's status by its id."""
    TOOL_CALLS.append(order_id)
    return {"order_id": order_id, "status": "shipped"}


@workflow
def ask(ctx: Any, question: str) -> Generator[Any, Any, str]:
    answer = yield from llm.prompt(question)
    yield WaitEvent("go")
    return answer


CLASSIFY = LLMCall(provider="openai", model="gpt-test", system="You classify tickets.")


@workflow
def classify(ctx: Any, ticket: str) -> Generator[Any, Any, Verdict]:
    verdict = yield from CLASSIFY.structured(f"Classify: {ticket}", Verdict)
    yield WaitEvent("go")
    return verdict


@workflow
def converse(ctx: Any) -> Generator[Any, Any, str]:
    history = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        ChatMessage(role="user", content="What is my name?"),
    ]
    answer = yield from llm.LLMCall(provider="openai", temperature=0).chat(history)
    yield WaitEvent("go")
    return answer


@workflow
def support(ctx: Any, question: str) -> Generator[Any, Any, list[Any]]:
    result = yield from llm.agent(question, tools=[lookup_order])
    yield WaitEvent("go")
    return [result.text, result.turns, len(result.messages)]


WORKFLOWS = [ask, classify, converse, support]


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.fixture
def providers(fake: FakeLLM) -> Iterator[LLMConfig]:
    anthropic = AnthropicProvider(api_key="test", base_url=fake.url, max_retries=0)
    openai = OpenAIProvider(api_key="test", base_url=f"{fake.url}/v1", max_retries=0)
    config = LLMConfig(
        provider=anthropic,
        model="claude-test",
        max_tokens=256,
        providers={"anthropic": anthropic, "openai": openai},
    )
    yield config
    anthropic.close()
    openai.close()
    llm.configure(None, LLMConfig())


def run_with_crash(url: str, config: LLMConfig, wf: Any, value: Any = None) -> Any:
    """Run ``wf`` until it waits, stop that App (the 'crash'), finish it on a new App."""
    first = App(url, registry=Registry(), workflows=WORKFLOWS, poll_interval=0.05)
    llm.configure(first, config)
    args = () if value is None else (value,)
    with first:
        handle = first.start_workflow(wf, *args, instance_id="i1")
        deadline = time.monotonic() + 10
        while first.status("i1").status != "waiting":
            assert time.monotonic() < deadline, first.status("i1")
            time.sleep(0.02)
    second = App(url, registry=Registry(), workflows=WORKFLOWS, poll_interval=0.05)
    llm.configure(second, config)
    with second:
        second.send_event("go", instance_id=handle.instance_id)
        return second.result("i1", timeout=10)


def test_prompt_with_anthropic_is_not_called_again_after_a_crash(
    sqlite_url: str, fake: FakeLLM, providers: LLMConfig
) -> None:
    fake.anthropic({"type": "text", "text": "Paris."})
    assert run_with_crash(sqlite_url, providers, ask, "Capital of France?") == "Paris."
    [sent] = fake.calls(ANTHROPIC)
    assert sent["model"] == "claude-test" and sent["max_tokens"] == 256
    assert sent["messages"] == [{"role": "user", "content": "Capital of France?"}]


def test_structured_output_with_openai(
    sqlite_url: str, fake: FakeLLM, providers: LLMConfig
) -> None:
    fake.openai('{"category": "billing", "urgent": true}')
    verdict = run_with_crash(sqlite_url, providers, classify, "I was charged twice")
    assert verdict == Verdict(category="billing", urgent=True)
    [sent] = fake.calls(OPENAI)
    assert sent["messages"][0] == {"role": "system", "content": "You classify tickets."}
    schema = sent["response_format"]["json_schema"]
    assert schema["name"] == "Verdict"
    assert schema["schema"]["required"] == ["category", "urgent"]


def test_structured_output_with_anthropic_uses_a_forced_tool(
    fake: FakeLLM, providers: LLMConfig
) -> None:
    from replaykit.testing import WorkflowEnvironment

    fake.anthropic(
        {
            "type": "tool_use",
            "id": "t1",
            "name": "respond",
            "input": {"category": "bug", "urgent": False},
        },
        stop_reason="tool_use",
    )
    llm.configure(None, providers)

    @workflow
    def verdict_wf(ctx: Any) -> Generator[Any, Any, Verdict]:
        found = yield from llm.structured("Classify: crash on start", Verdict)
        return found

    env = WorkflowEnvironment(activities={"replaykit.llm.complete": llm.complete.fn})
    assert env.run(verdict_wf) == Verdict(category="bug", urgent=False)
    [sent] = fake.calls(ANTHROPIC)
    assert sent["tool_choice"] == {"type": "tool", "name": "respond"}
    assert sent["tools"][0]["input_schema"]["properties"]["urgent"] == {"type": "boolean"}


def test_multi_turn_chat_with_openai(sqlite_url: str, fake: FakeLLM, providers: LLMConfig) -> None:
    fake.openai("Your name is Ada.")
    assert run_with_crash(sqlite_url, providers, converse) == "Your name is Ada."
    [sent] = fake.calls(OPENAI)
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["temperature"] == 0 and sent["model"] == "claude-test"


def test_agent_loop_records_tool_calls_and_model_turns(
    sqlite_url: str, fake: FakeLLM, providers: LLMConfig
) -> None:
    TOOL_CALLS.clear()
    fake.anthropic(
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "tu1", "name": "lookup_order", "input": {"order_id": "o42"}},
        stop_reason="tool_use",
    )
    fake.anthropic({"type": "text", "text": "Order o42 has shipped."})
    result = run_with_crash(sqlite_url, providers, support, "Where is o42?")
    assert result == ["Order o42 has shipped.", 2, 4]
    assert TOOL_CALLS == ["o42"]  # the tool ran once, the replay used its recorded result
    first, second = fake.calls(ANTHROPIC)
    assert first["tools"][0]["name"] == "lookup_order"
    assert first["tools"][0]["description"] == "Look up an order's status by its id."
    assert first["tools"][0]["input_schema"]["required"] == ["order_id"]
    tool_result = second["messages"][-1]["content"][0]
    assert tool_result["type"] == "tool_result" and tool_result["tool_use_id"] == "tu1"
    assert "shipped" in tool_result["content"]


def test_agent_with_openai_tool_calls_and_bad_arguments(
    fake: FakeLLM, providers: LLMConfig
) -> None:
    from replaykit.testing import WorkflowEnvironment

    TOOL_CALLS.clear()
    bad = {"id": "c1", "type": "function", "function": {"name": "lookup_order", "arguments": "{}"}}
    good = {
        "id": "c2",
        "type": "function",
        "function": {"name": "lookup_order", "arguments": '{"order_id": "o1"}'},
    }
    fake.openai(None, [bad])
    fake.openai(None, [good])
    fake.openai("Shipped.")
    llm.configure(None, providers)

    @workflow
    def openai_agent(ctx: Any) -> Generator[Any, Any, llm.AgentResult]:
        result = yield from LLMCall(provider="openai").agent("Where is o1?", [lookup_order])
        return result

    env = WorkflowEnvironment(
        activities={"replaykit.llm.complete": llm.complete.fn, "lookup_order": lookup_order.fn}
    )
    result = env.run(openai_agent)
    assert result.text == "Shipped." and result.turns == 3
    assert TOOL_CALLS == ["o1"]
    second = fake.calls(OPENAI)[1]
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool" and "order_id" in tool_message["content"]


def test_unconfigured_provider_is_a_terminal_error() -> None:
    from replaykit import TerminalError

    llm.configure(None, LLMConfig())
    with pytest.raises(TerminalError, match="no LLM provider"):
        llm.complete.fn(None, LLMCall().request("hi"))

"""A durable support agent: model turns and tool calls are recorded.

See docs/integrations/llm.md. Run it with

    ANTHROPIC_API_KEY=... python docs/examples/llm_agent.py sqlite:///agent.db "Where is o42?"

``ANTHROPIC_MODEL`` chooses the model, ``ANTHROPIC_BASE_URL`` another endpoint (the tests
use a local fake server).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from typing import Any

import msgspec

from replaykit import activity, workflow
from replaykit.integrations import llm
from replaykit.runtime.app import App


class Triage(msgspec.Struct):
    category: str
    urgent: bool


@activity
def order_status(ctx: Any, order_id: str) -> dict[str, str]:
    """Look up an order's shipping status by its id."""
    return {"order_id": order_id, "status": "shipped"}


SUPPORT = llm.LLMCall(system="You are a concise support agent.", temperature=0)


@workflow
def support(ctx: Any, question: str) -> Generator[Any, Any, dict[str, Any]]:
    triage = yield from SUPPORT.structured(f"Triage this question: {question}", Triage)
    answer = yield from SUPPORT.agent(question, tools=[order_status], max_turns=5)
    return {"category": triage.category, "urgent": triage.urgent, "answer": answer.text}


def main(database: str, question: str, model: str, **client_options: Any) -> dict[str, Any]:
    provider = llm.AnthropicProvider(**client_options)
    app = App(database, workflows=[support], activities=[order_status])
    llm.configure(app, llm.LLMConfig(provider=provider, model=model, max_tokens=512))
    try:
        with app:
            return app.start_workflow(support, question, instance_id=question).result(timeout=120)
    finally:
        provider.close()


if __name__ == "__main__":
    base_url = os.environ.get("ANTHROPIC_BASE_URL")
    options = {"base_url": base_url} if base_url else {}
    model = os.environ.get("ANTHROPIC_MODEL", "claude-sonnet-4-5")
    print(main(sys.argv[1], sys.argv[2], model, **options))

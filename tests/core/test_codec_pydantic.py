"""pydantic models as workflow inputs, results and activity results (duck-typed in the codec)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pydantic
import pytest

from replaykit import InvalidInput, activity, workflow
from replaykit.core.codec import convert, to_builtins
from replaykit.testing import WorkflowEnvironment, replay_check


class Item(pydantic.BaseModel):
    sku: str
    qty: int = pydantic.Field(gt=0)


class Quote(pydantic.BaseModel):
    sku: str
    total: float


@activity
def price(ctx: Any, item: Item) -> Quote:
    return Quote(sku=item.sku, total=item.qty * 2.5)


@workflow
def quote(ctx: Any, item: Item) -> Generator[Any, Any, Quote]:
    result = yield from price(item)
    assert isinstance(result, Quote)
    return result


def test_pydantic_input_and_results_round_trip_through_history() -> None:
    run = WorkflowEnvironment().start(quote, Item(sku="pen", qty=4))
    assert run.result() == Quote(sku="pen", total=10.0)
    assert replay_check(quote, run.history).ok


def test_pydantic_validation_errors_become_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="does not match Item"):
        convert({"sku": "pen", "qty": 0}, Item)
    assert to_builtins(Item(sku="a", qty=1)) == {"sku": "a", "qty": 1}

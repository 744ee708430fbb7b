"""Recorded values (Now, Uuid, Random, SideEffect, values flowing into activities) and
versioning markers (Patched, taken and asked again; DeprecatePatch)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from replaykit import DeprecatePatch, Now, Patched, Random, SideEffect, Uuid, activity, workflow

from ..harness import Advance, Scenario, StartWorkflow


@activity(name="d_echo")
def d_echo(ctx: Any, value: Any) -> Any:
    return {"echo": value}


def _side() -> dict[str, int]:
    return {"computed": 42}


@workflow(name="d_values")
def d_values(ctx: Any) -> Generator[Any, Any, dict[str, Any]]:
    now = yield Now()
    first = yield Uuid()
    second = yield Uuid()
    rnd = yield Random()
    side = yield SideEffect(_side, name="d_side")
    echoed = yield d_echo([first, rnd])
    return {"now": now.timestamp(), "ids": [first, second, first], "side": side, "echo": echoed}


@workflow(name="d_patched")
def d_patched(ctx: Any) -> Generator[Any, Any, list[Any]]:
    out: list[Any] = []
    if (yield Patched("d-v2")):
        out.append("v2")
    out.append((yield Patched("d-v2")))  # the same answer, no new marker
    yield DeprecatePatch("d-old")  # nothing recorded: no instance took it
    out.append((yield d_echo("after")))
    return out


SCENARIOS = [
    Scenario(
        "recorded_values",
        workflows=(d_values,),
        activities=(d_echo,),
        script=(Advance(3), StartWorkflow("d_values", "values")),
        expect={"values": "completed"},
    ),
    Scenario(
        "patched_and_deprecated",
        workflows=(d_patched,),
        activities=(d_echo,),
        script=(StartWorkflow("d_patched", "patched"),),
        expect={"patched": "completed"},
    ),
]

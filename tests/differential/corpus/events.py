"""Events: targeted and broadcast, early (sent before the wait) and late, with ``match`` (the one
rule of core/event_match.py: every key present, equal as JSON values) and with timeouts, and a
duplicate (source, id) stored once.

Pins two earlier disagreements between memory and the databases: ``match={"k": None}`` (needs
the key present, with null) and ``true`` vs ``1`` (different; PostgreSQL's targeted path once
compared them as jsonb), each sent both before and after the instance waits."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from replaykit import EventTimeout, WaitEvent, workflow

from ..harness import Advance, Scenario, SendEvent, StartWorkflow


@workflow(name="d_matcher")
def d_matcher(ctx: Any, match: dict[str, Any]) -> Generator[Any, Any, Any]:
    got = yield WaitEvent("d.matched", match=match)
    return got.data


@workflow(name="d_waiter")
def d_waiter(ctx: Any, types: list[str]) -> Generator[Any, Any, list[Any]]:
    seen = []
    for type_ in types:
        try:
            got = yield WaitEvent(type_, timeout=30)
        except EventTimeout:
            seen.append(f"{type_}: timed out")
        else:
            seen.append(got.data)
    return seen


def _match_case(name: str, match: dict[str, Any], misses: list[Any], hit: Any) -> Scenario:
    """``misses`` are sent (targeted) before and after the wait exists and must not match;
    ``hit`` matches. The same again broadcast, to a second instance."""
    early, late = "early-" + name, "late-" + name
    script = [StartWorkflow("d_matcher", early, match)]
    script += [SendEvent("d.matched", miss, instance_id=early) for miss in misses]
    script += [SendEvent("d.matched", hit, instance_id=early)]
    script += [StartWorkflow("d_matcher", late, match)]
    script += [SendEvent("d.matched", miss) for miss in misses]  # broadcast
    script += [SendEvent("d.matched", hit)]
    return Scenario(
        f"event_match_{name}",
        workflows=(d_matcher,),
        script=tuple(script),
        expect={early: "completed", late: "completed"},
    )


def _early_match_case(name: str, match: dict[str, Any], misses: list[Any], hit: Any) -> Scenario:
    """Events that arrive before the instance exists, targeted to it... are impossible (unknown
    target), so: start it waiting for something else first, send every event, then let it wait
    with ``match`` (the events are taken from storage when the wait is registered)."""
    iid = "stored-" + name
    script = [StartWorkflow("d_waiter_then_match", iid, match)]
    script += [SendEvent("d.matched", miss, instance_id=iid) for miss in misses]
    script += [SendEvent("d.matched", hit, instance_id=iid), SendEvent("d.first", instance_id=iid)]
    return Scenario(
        f"event_match_stored_{name}",
        workflows=(d_waiter_then_match,),
        script=tuple(script),
        expect={iid: "completed"},
    )


@workflow(name="d_waiter_then_match")
def d_waiter_then_match(ctx: Any, match: dict[str, Any]) -> Generator[Any, Any, Any]:
    yield WaitEvent("d.first")
    got = yield WaitEvent("d.matched", match=match)
    return got.data


_MATCH_CASES = [
    ("null_needs_the_key", {"k": None}, [{}, {"j": None}, {"k": 0}, {"k": False}], {"k": None}),
    ("true_is_not_one", {"flag": True}, [{"flag": 1}, {"flag": "true"}], {"flag": True}),
    ("one_is_not_true", {"flag": 1}, [{"flag": True}], {"flag": 1.0}),
    (
        "nested_values",
        {"order": {"id": "o1", "tags": [1, 2]}},
        [{"order": {"id": "o1", "tags": [2, 1]}}, {"order": {"id": "o1"}}],
        {"order": {"id": "o1", "tags": [1.0, 2]}, "extra": 1},
    ),
    ("not_an_object", {"k": 1}, [[1], "k", None], {"k": 1, "other": None}),
]

SCENARIOS = [
    *[_match_case(*case) for case in _MATCH_CASES],
    *[_early_match_case(*case) for case in _MATCH_CASES],
    Scenario(
        "events_targeted_early_late_and_timed_out",
        workflows=(d_waiter,),
        script=(
            StartWorkflow("d_waiter", "ev-1", ["d.a", "d.b", "d.c", "d.a"]),
            SendEvent("d.b", {"n": "b early"}, instance_id="ev-1"),
            SendEvent("d.a", {"n": "a1"}, instance_id="ev-1"),
            Advance(31),
            SendEvent("d.a", {"n": "a2"}, instance_id="ev-1"),
        ),
        expect={"ev-1": "completed"},
    ),
    Scenario(
        "events_broadcast_to_existing_instances_only",
        workflows=(d_waiter,),
        script=(
            StartWorkflow("d_waiter", "bc-1", ["d.x", "d.y"]),
            StartWorkflow("d_waiter", "bc-2", ["d.y", "d.x"]),
            SendEvent("d.y", {"n": "y"}),  # bc-1 takes it later, bc-2 now
            StartWorkflow("d_waiter", "bc-3", ["d.y", "d.x"]),  # too late for that one
            SendEvent("d.x", {"n": "x"}),
            Advance(40),
        ),
        expect={"bc-1": "completed", "bc-2": "completed", "bc-3": "completed"},
    ),
    Scenario(
        "event_not_matched_leaves_the_instance_waiting",
        workflows=(d_matcher,),
        script=(
            StartWorkflow("d_matcher", "left-waiting", {"k": 1}),
            SendEvent("d.matched", {"k": 2}, instance_id="left-waiting"),
            SendEvent("d.matched", {"k": True}),
            Advance(3600),
        ),
        expect={"left-waiting": "waiting"},
    ),
    Scenario(
        "events_duplicate_source_and_id_stored_once",
        workflows=(d_waiter,),
        script=(
            StartWorkflow("d_waiter", "dup-1", ["d.once", "d.once"]),
            SendEvent("d.once", {"n": 1}, instance_id="dup-1", id="e-1"),
            SendEvent("d.once", {"n": 2}, instance_id="dup-1", id="e-1"),
            SendEvent("d.once", {"n": 3}, id="e-1"),
            Advance(31),
        ),
        expect={"dup-1": "completed"},
    ),
]

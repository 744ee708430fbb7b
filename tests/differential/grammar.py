"""Workflows generated from a small grammar of commands, with a script to drive them.

A *program* is a JSON list of operations that one workflow, ``g_program``, interprets: each
operation yields one command (or a combinator over a few), and the workflow returns what every
operation gave, failures as text. Hypothesis builds programs and scripts (:func:`scenarios`); the
differential test runs them in memory and on every database.

Grammar (``op`` and its fields)::

    act      n, fail (attempts that fail first), terminal      an activity with retries
    comp     n                                                 an activity with a compensation
    sleep    s                                                 Sleep(s)
    until    s                                                 SleepUntil(start of the script + s)
    event    type, timeout, match                              WaitEvent
    recv     timeout                                           Receive on the channel
    sub      mode / unsub                                      (Un)Subscribe the channel
    publish  data / send_to target                             Publish / SendTo another instance
    value    kind (now, uuid, random, side)                    recorded values
    patch    id                                                Patched(id)
    all      members, settled / any members, cancel_losers     fan-out over member operations
    child    program                                           a child running a program
    recur                                                      Recur with the rest of the program
    fail                                                       the workflow raises (compensations)
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime
from typing import Any

from hypothesis import strategies as st

from replaykit import (
    ActivityError,
    All,
    AnyOf,
    ChildWorkflowError,
    EventData,
    EventTimeout,
    Message,
    Now,
    Patched,
    Publish,
    Random,
    Receive,
    Recur,
    RetryPolicy,
    SendTo,
    SideEffect,
    Sleep,
    SleepUntil,
    Subscribe,
    TerminalError,
    Unsubscribe,
    Uuid,
    WaitEvent,
    activity,
    workflow,
)
from replaykit.testing.clock import DEFAULT_START

from .harness import (
    Advance,
    Cancel,
    PublishMessage,
    Scenario,
    SendEvent,
    SendMessage,
    StartWorkflow,
    Stimulus,
)

CHANNEL = "g-ch"
EVENT_TYPES = ("g.a", "g.b")
INSTANCES = ("g-1", "g-2")

# -- the interpreter of programs -----------------------------------------------------------------


@activity(name="g_act", retry=RetryPolicy(max_attempts=3, initial_interval=2.0))
def g_act(ctx: Any, n: int, fail: int, terminal: bool) -> int:
    if terminal:
        raise TerminalError(f"g_act {n} gives up")
    if ctx.attempt <= fail:
        raise ConnectionError(f"g_act {n} attempt {ctx.attempt}")
    return 2 * n


@activity(name="g_undo")
def g_undo(ctx: Any, n: int) -> str:
    return f"undid {n} ({ctx.compensating_result})"


@activity(name="g_do", compensate=g_undo)
def g_do(ctx: Any, n: int) -> str:
    return f"did {n}"


def _side() -> str:
    return "side"


def _member(op: dict[str, Any]) -> Any:
    """The command of an operation that can also be a member of All/Any."""
    kind = op["op"]
    if kind == "act":
        return g_act(op["n"], op["fail"], op["terminal"])
    if kind == "sleep":
        return Sleep(op["s"])
    if kind == "until":
        return SleepUntil(DEFAULT_START + op["s"])
    if kind == "event":
        return WaitEvent(op["type"], timeout=op["timeout"], match=op["match"])
    if kind == "recv":
        return Receive(CHANNEL, timeout=op["timeout"])
    if kind == "child":
        return g_program.child(op["program"])
    raise ValueError(f"not a member operation: {op!r}")


def _command(op: dict[str, Any]) -> Any:
    kind = op["op"]
    simple = {
        "comp": lambda: g_do(op["n"]),
        "sub": lambda: Subscribe(CHANNEL, mode=op["mode"]),
        "unsub": lambda: Unsubscribe(CHANNEL),
        "publish": lambda: Publish(CHANNEL, op["data"], metadata={"by": "program"}),
        "send_to": lambda: SendTo(op["target"], CHANNEL, op["data"]),
        "patch": lambda: Patched(op["id"]),
        "all": lambda: All([_member(m) for m in op["members"]], settled=op["settled"]),
        "any": lambda: AnyOf([_member(m) for m in op["members"]], cancel_losers=op["cancel"]),
    }
    if kind in simple:
        return simple[kind]()
    if kind == "value":
        return {"now": Now, "uuid": Uuid, "random": Random}.get(op["kind"], _side_effect)()
    return _member(op)


def _side_effect() -> SideEffect:
    return SideEffect(_side, name="g_side")


def _shown(value: Any) -> Any:
    """A result as JSON: events and messages by their data, failures by their type."""
    if isinstance(value, (EventData, Message)):
        return value.data
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, BaseException):
        return f"error {type(value).__name__}"
    if isinstance(value, (list, tuple)):
        return [_shown(v) for v in value]
    return value


@workflow(name="g_program")
def g_program(ctx: Any, program: list[dict[str, Any]]) -> Generator[Any, Any, list[Any]]:
    out: list[Any] = []
    for index, op in enumerate(program):
        if op["op"] == "recur":
            yield Recur(program[index + 1 :])
        if op["op"] == "fail":
            raise TerminalError(f"the program fails at operation {index}")
        try:
            out.append(_shown((yield _command(op))))
        except (ActivityError, EventTimeout, ChildWorkflowError) as exc:
            out.append(f"{type(exc).__name__} at {index}")
    return out


GENERATED_WORKFLOWS = (g_program,)
GENERATED_ACTIVITIES = (g_act, g_do)

# -- strategies ----------------------------------------------------------------------------------

_values = st.sampled_from([1, None, True, 1.0, "x", 0, False])
_match = st.one_of(st.none(), st.none(), st.builds(lambda v: {"k": v}, _values))
_timeout = st.sampled_from([None, None, 3.0, 40.0])
_data = st.one_of(
    st.builds(lambda v: {"k": v}, _values),
    st.builds(lambda v: {"k": v, "j": 1}, _values),
    st.just({"j": 1}),
)


def _pick(*options: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """One of ``options``, each about as likely (``st.one_of`` favours some branches)."""
    return st.sampled_from(options).flatmap(lambda option: option)


def _op(name: str, /, **fields: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"op": st.just(name), **fields})


_act = _op(
    "act", n=st.integers(0, 9), fail=st.sampled_from([0, 0, 1, 2, 5]), terminal=st.booleans()
)
_sleep = _op("sleep", s=st.sampled_from([0.0, 1.0, 5.0, 30.0]))
_until = _op("until", s=st.sampled_from([-10.0, 7.0, 50.0]))
_event = _op("event", type=st.sampled_from(EVENT_TYPES), timeout=_timeout, match=_match)
_recv = _op("recv", timeout=_timeout)
_simple_member = _pick(_act, _sleep, _until, _event, _recv)
_child = _op("child", program=st.lists(_pick(_act, _sleep, _event), max_size=3))
_member_op = _pick(_act, _sleep, _until, _event, _recv, _child)


def _top_op(peer: str) -> st.SearchStrategy[dict[str, Any]]:
    return _pick(
        _member_op,
        _member_op,
        _event,
        _op("comp", n=st.integers(0, 9)),
        _op("sub", mode=st.sampled_from(["broadcast", "competing"])),
        _op("unsub"),
        _op("publish", data=_data),
        _op("send_to", target=st.just(peer), data=_data),
        _op("value", kind=st.sampled_from(["now", "uuid", "random", "side"])),
        _op("patch", id=st.sampled_from(["p1", "p2"])),
        _op("all", members=st.lists(_member_op, min_size=1, max_size=3), settled=st.booleans()),
        _op("any", members=st.lists(_member_op, min_size=1, max_size=3), cancel=st.booleans()),
        _pick(_op("recur"), _op("fail")),
    )


def _program(peer: str) -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(_top_op(peer), min_size=1, max_size=6)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """One or two program instances and a script of up to eight stimuli after their start."""
    count = draw(st.integers(1, 2))
    ids = INSTANCES[:count]
    programs = {iid: draw(_program(INSTANCES[1 - i])) for i, iid in enumerate(ids)}
    started = [ids[0]]
    script: list[Stimulus] = [StartWorkflow("g_program", ids[0], programs[ids[0]])]
    later_start = draw(st.integers(0, 8)) if count == 2 else None
    steps = draw(st.integers(0, 8))
    for index in range(steps):
        if index == later_start:
            script.append(StartWorkflow("g_program", ids[1], programs[ids[1]]))
            started.append(ids[1])
        script.append(draw(_stimulus(started)))
    if count == 2 and ids[1] not in started:
        script.append(StartWorkflow("g_program", ids[1], programs[ids[1]]))
    script.append(Advance(600.0))  # retries, timeouts and sleeps run out
    return Scenario(
        "generated",
        workflows=GENERATED_WORKFLOWS,
        activities=GENERATED_ACTIVITIES,
        script=tuple(script),
        expect={},
    )


def _stimulus(started: list[str]) -> st.SearchStrategy[Stimulus]:
    target = st.sampled_from(started)
    maybe_target = st.one_of(st.none(), target)
    event = st.builds(SendEvent, st.sampled_from(EVENT_TYPES), _data, maybe_target)
    advance = st.builds(Advance, st.sampled_from([1.0, 4.0, 30.0, 120.0]))
    cancel = st.builds(Cancel, target, st.just("generated cancel"))
    return _pick(
        event,
        event,
        event,
        advance,
        advance,
        st.builds(PublishMessage, st.just(CHANNEL), _data),
        st.builds(SendMessage, target, st.just(CHANNEL), _data),
        _pick(cancel, event),
    )

"""Hypothesis properties over random workflows (DESIGN.md section 5.7, h11's fuzz idea).

A *plan* is a random list of steps (activities that fail and retry, with and without
compensation, sleeps, event waits with and without timeout, All/Any fan-outs, Now, SideEffect);
one generic workflow executes any plan. Each example records one history with
:class:`replaykit.testing.WorkflowEnvironment` and checks:

(a) feeding the events one at a time and replaying every prefix at once agree (status, result,
    error, outstanding commands);
(b) resuming from any prefix (as after a crash) ends in the same history and result;
(c) an activity recorded as completed is never issued again.

Plans may hold patch points (``Patched``); the same plan also runs as the code from before the
patch (no ``Patched``: the old path) and as the code that deprecated it (``DeprecatePatch``: the
new path), and histories of one version must replay under the next:

(d) a history from before the patch replays under it alike whole and piecewise, and on the old
    path to the same result;
(e) a history that took the patch replays after it is deprecated to the same result;
(f) resuming any prefix of a history from before the patch under it finishes.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replaykit import (
    ActivityCall,
    All,
    AnyOf,
    Command,
    DeprecatePatch,
    Interpreter,
    Now,
    Patched,
    RetryPolicy,
    SideEffect,
    Sleep,
    WaitEvent,
    activity,
    workflow,
)
from replaykit.core.decisions import ScheduledCommand
from replaykit.core.history import ActivityCompleted, Event, EventData, StepEvent
from replaykit.testing import TestRun, WorkflowEnvironment

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FAST_RETRY = RetryPolicy(max_attempts=3, initial_interval=0.25, backoff_coefficient=2.0)


class Flaky(Exception):
    """Raised by ``prop_work`` on its first ``fails`` attempts."""


@activity(name="prop_undo")
def prop_undo(ctx: Any, key: str, fails: int) -> str:
    return f"undo:{key}"


@activity(name="prop_work", retry=FAST_RETRY)
def prop_work(ctx: Any, key: str, fails: int) -> str:
    if ctx.attempt <= fails:
        raise Flaky(f"{key} failed attempt {ctx.attempt}")
    return f"{key}@{ctx.attempt}"


@activity(name="prop_book", retry=FAST_RETRY, compensate=prop_undo)
def prop_book(ctx: Any, key: str, fails: int) -> str:
    if ctx.attempt <= fails:
        raise Flaky(f"{key} failed attempt {ctx.attempt}")
    return f"booked:{key}"


def _command(key: str, step: list[Any]) -> Command:
    kind = step[0]
    if kind == "act":
        act = prop_book if step[2] else prop_work
        return act(key, step[1])
    if kind == "sleep":
        return Sleep(step[1])
    if kind == "wait":
        return WaitEvent(f"ev-{key}", timeout=step[1])
    if kind == "now":
        return Now()
    if kind == "side":
        value = step[1]
        return SideEffect(lambda: value, name=f"side-{key}")
    members = [_command(f"{key}.{j}", m) for j, m in enumerate(step[1])]
    if kind == "all":
        return All(members, settled=step[2])
    return AnyOf(members, cancel_losers=step[2])


def _plain(value: Any) -> Any:
    if isinstance(value, BaseException):
        return f"error:{type(value).__name__}"
    if isinstance(value, EventData):
        return value.data
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _patch_point(step: list[Any], version: str) -> Generator[Command, Any, bool]:
    """A patch point whose new path may have one more step (``extra``)."""
    _, patch_id, extra = step
    if version == "old":
        return False
    if version == "patched":
        taken = yield Patched(patch_id)
    else:
        yield DeprecatePatch(patch_id)
        taken = True
    if taken and extra:
        yield Sleep(0.5)
    return bool(taken)


@workflow(name="prop_plan")
def prop_plan(ctx: Any, plan: list[list[Any]]) -> Generator[Command, Any, list[Any]]:
    return (yield from _run_plan(plan, "patched"))


@workflow(name="prop_plan_old")
def prop_plan_old(ctx: Any, plan: list[list[Any]]) -> Generator[Command, Any, list[Any]]:
    return (yield from _run_plan(plan, "old"))


@workflow(name="prop_plan_deprecated")
def prop_plan_deprecated(ctx: Any, plan: list[list[Any]]) -> Generator[Command, Any, list[Any]]:
    return (yield from _run_plan(plan, "deprecated"))


def _run_plan(plan: list[list[Any]], version: str) -> Generator[Command, Any, list[Any]]:
    out: list[Any] = []
    for i, step in enumerate(plan):
        if step[0] == "patch":
            out.append((yield from _patch_point(step, version)))
            continue
        catch = step[-1] if step[0] in ("act", "all", "any") else True
        try:
            value = yield _command(f"k{i}", step)
        except Exception as exc:
            if not catch:
                raise
            value = exc
        out.append(_plain(value))
    return out


# -- strategies ---------------------------------------------------------------------------------

fails = st.sampled_from([0, 0, 0, 1, 2, 5])  # 5: never succeeds with 3 attempts
seconds = st.sampled_from([1.5, 2.5, 3.5, 3600.5, 30 * 86400.5])


@st.composite
def waits(draw: st.DrawFn) -> tuple[list[Any], bool]:
    """A WaitEvent step and whether its event is sent (an unsent wait always has a timeout)."""
    send = draw(st.booleans())
    timeout = draw(st.sampled_from([None, 2.5, 10.5])) if send else draw(seconds)
    return ["wait", timeout], send


@st.composite
def members(draw: st.DrawFn, sent: list[bool], kinds: tuple[str, ...]) -> list[Any]:
    kind = draw(st.sampled_from(kinds))
    if kind == "act":
        return ["act", draw(fails), draw(st.booleans())]
    if kind == "sleep":
        return ["sleep", draw(seconds)]
    step, send = draw(waits())
    sent.append(send)
    return step


@st.composite
def plans(draw: st.DrawFn, resumable: bool = False) -> tuple[list[list[Any]], set[str]]:
    """A plan and the event types the driver sends when the workflow waits for them.

    With ``resumable``, ``Any`` members are only timers and waits and losers are cancelled: a
    loser *activity* still running when the instance crashes is not run again after a resume,
    so its late result (recorded in an uninterrupted run) would be missing from the history.
    """
    plan: list[list[Any]] = []
    sent: set[str] = set()
    for i in range(draw(st.integers(min_value=0, max_value=8))):
        kinds = ["act", "act", "sleep", "wait", "all", "any", "now", "side", "patch"]
        kind = draw(st.sampled_from(kinds))
        if kind == "patch":  # few ids: a later point of the same patch takes the first answer
            plan.append(["patch", f"p{draw(st.integers(0, 2))}", draw(st.booleans())])
        elif kind == "act":
            plan.append(["act", draw(fails), draw(st.booleans()), draw(st.booleans())])
        elif kind == "sleep":
            plan.append(["sleep", draw(seconds)])
        elif kind == "wait":
            step, send = draw(waits())
            plan.append(step)
            if send:
                sent.add(f"ev-k{i}")
        elif kind in ("all", "any"):
            flags: list[bool] = []
            only_cancellable = resumable and kind == "any"
            kinds = ("sleep", "wait") if only_cancellable else ("act", "sleep", "wait")
            group = [draw(members(flags, kinds)) for _ in range(draw(st.integers(1, 3)))]
            sent |= {f"ev-k{i}.{j}" for j, f in zip(_wait_indexes(group), flags, strict=True) if f}
            flag = True if only_cancellable else draw(st.booleans())
            plan.append([kind, group, flag, draw(st.booleans())])
        elif kind == "now":
            plan.append(["now"])
        else:
            plan.append(["side", draw(st.integers(-5, 5))])
    return plan, sent


def _wait_indexes(group: list[list[Any]]) -> list[int]:
    return [j for j, m in enumerate(group) if m[0] == "wait"]


# -- driving ------------------------------------------------------------------------------------


def drive(run: TestRun, sent: set[str]) -> TestRun:
    """Run to the end, sending each planned event as soon as the workflow waits for it."""
    env = run.env
    env.run_until_idle()
    while not run.finished:
        due = [w for w in run.waits.values() if w.kind == "event" and w.key in sent]
        if due:
            run.send_event(due[0].key, {"type": due[0].key})
        elif not env.fire_next_timer(limit=math.inf):
            raise AssertionError(f"stuck waiting for {run.waits}")
    return run


def record(plan: list[list[Any]], sent: set[str], wf: Any = prop_plan) -> TestRun:
    env = WorkflowEnvironment()
    return drive(env.start(wf, plan, instance_id="prop-1"), sent)


def _key(s: ScheduledCommand) -> tuple[Any, ...]:
    command = s.command
    seconds = getattr(command, "seconds", None)
    return (s.step, s.attempt, s.group, type(command).__name__, command.identity(), seconds)


def _started_as(history: list[Event], wf: Any) -> list[Event]:
    """``history`` as if ``wf`` (another version of the plan workflow) had started it."""
    first = msgspec.structs.replace(history[0], workflow=wf.name)
    return [first, *history[1:]]


def _agree_on_every_prefix(wf: Any, history: list[Event]) -> Interpreter:
    """Feed ``history`` one event at a time to ``wf`` and check it against a whole replay of
    every prefix; return the live interpreter."""
    live = Interpreter(wf, instance_id="prop-1")
    for k, event in enumerate(history, start=1):
        live.feed([event])
        whole = Interpreter(wf, instance_id="prop-1")
        decision = whole.feed(history[:k], replaying=True)
        assert _state(whole) == _state(live), f"prefix {k} of {len(history)}"
        assert sorted(_key(s) for s in decision.commands) == _state(whole)[3]
    return live


def _state(interp: Interpreter) -> tuple[Any, ...]:
    error = (interp.error.type, interp.error.message) if interp.error else None
    outstanding = sorted(_key(s) for s in interp.outstanding())
    return (interp.status, interp.result, error, outstanding)


def _strip(history: list[Event]) -> list[Event]:
    return [msgspec.structs.replace(e, at=0.0) for e in history]


def _per_step(history: list[Event]) -> dict[int, list[Event]]:
    """Each step's events in order, without timestamps and without late outcomes.

    A resume from a history prefix (as after a crash that lost everything but the history) does
    not see what the store held then: events delivered together (two timers due at the same
    moment are fired together, as a database fires them) may come in another order across
    steps, and an abandoned ``Any`` loser is not re-issued, so its late outcome (recorded and
    ignored) may be missing. Per step, the events must be the same."""
    interp = Interpreter(prop_plan, instance_id="prop-1")
    steps: dict[int, list[Event]] = {}
    for event in history:
        late = isinstance(event, StepEvent) and not interp.is_outstanding(event.step)
        interp.feed([event])
        if not late:
            step = event.step if isinstance(event, StepEvent) else -1
            steps.setdefault(step, []).append(msgspec.structs.replace(event, at=0.0))
    return steps


# -- properties ---------------------------------------------------------------------------------


@SETTINGS
@given(plans())
def test_incremental_and_full_replay_agree_on_every_prefix(case: Any) -> None:
    plan, sent = case
    history = record(plan, sent).history
    assert _agree_on_every_prefix(prop_plan, history).finished


@SETTINGS
@given(plans())
def test_a_history_from_before_a_patch_replays_under_it_on_the_old_path(case: Any) -> None:
    plan, sent = case
    old = record(plan, sent, prop_plan_old)
    live = _agree_on_every_prefix(prop_plan, _started_as(old.history, prop_plan))
    while (marker := live.undecided_marker()) is not None:  # the old code ended right there
        live.skip_marker(marker.step)
    assert (live.status, live.result) == (old.decision.status, old.decision.result)


@SETTINGS
@given(plans())
def test_a_history_that_took_a_patch_replays_alike_once_the_patch_is_deprecated(
    case: Any,
) -> None:
    plan, sent = case
    patched = record(plan, sent)
    live = _agree_on_every_prefix(
        prop_plan_deprecated, _started_as(patched.history, prop_plan_deprecated)
    )
    assert (live.status, live.result) == (patched.decision.status, patched.decision.result)


@SETTINGS
@given(plans(resumable=True), st.data())
def test_resuming_any_prefix_of_a_history_from_before_a_patch_under_it_finishes(
    case: Any, data: st.DataObject
) -> None:
    plan, sent = case
    history = _started_as(record(plan, sent, prop_plan_old).history, prop_plan)
    k = data.draw(st.integers(min_value=1, max_value=len(history)), label="cut")
    assert drive(WorkflowEnvironment().resume(prop_plan, history[:k]), sent).finished


@SETTINGS
@given(plans(resumable=True), st.data())
def test_resuming_from_any_prefix_gives_the_same_history_and_result(
    case: Any, data: st.DataObject
) -> None:
    plan, sent = case
    original = record(plan, sent)
    history = original.history
    k = data.draw(st.integers(min_value=1, max_value=len(history)), label="cut")
    resumed = drive(WorkflowEnvironment().resume(prop_plan, history[:k]), sent)
    assert _per_step(resumed.history) == _per_step(history)
    assert resumed.decision.status == original.decision.status
    assert resumed.decision.result == original.decision.result
    done = {e.step for e in history[:k] if isinstance(e, ActivityCompleted)}
    keys = {e.result.split("@")[0] for e in history[:k] if isinstance(e, ActivityCompleted)}
    rerun = [args[0] for name, args, _ in resumed.activity_calls if name != "prop_undo"]
    assert not keys & set(rerun), f"completed activities ran again (steps {sorted(done)})"


@SETTINGS
@given(plans())
def test_no_completed_activity_is_outstanding_after_replaying_any_prefix(case: Any) -> None:
    plan, sent = case
    history = record(plan, sent).history
    for k in range(1, len(history) + 1):
        interp = Interpreter(prop_plan, instance_id="prop-1")
        interp.feed(history[:k], replaying=True)
        completed = {e.step for e in history[:k] if isinstance(e, ActivityCompleted)}
        calls = {s.step for s in interp.outstanding() if isinstance(s.command, ActivityCall)}
        assert not completed & calls, f"prefix {k}: re-issued steps {completed & calls}"


def test_the_generated_workflow_covers_failures_and_compensation() -> None:
    """A guard that the plan workflow exercises what the properties rely on."""
    run = record([["act", 0, True, True], ["act", 5, False, False]], set())
    kinds = [type(e).__name__ for e in run.history]
    assert run.decision.status == "failed"
    assert kinds.count("ActivityFailed") == 3
    assert kinds.count("RetryTimerFired") == 2
    assert kinds[-1] == "CompensationCompleted"

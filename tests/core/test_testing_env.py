"""replaykit.testing: in-memory runs with a virtual clock, fakes, events, replay checks."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Generator
from typing import Any

import msgspec
import pytest

from replaykit import (
    ActivityError,
    ActivityTimeout,
    ChildWorkflowError,
    Command,
    Interpreter,
    Message,
    NonDeterminismError,
    Now,
    Publish,
    Random,
    Receive,
    Recur,
    RetryPolicy,
    SideEffect,
    Sleep,
    SleepUntil,
    StartChild,
    Subscribe,
    Uuid,
    WaitEvent,
    WorkflowCancelled,
    WorkflowFailed,
    activity,
    register_error,
    workflow,
)
from replaykit.core.history import ActivityFailed, ValueRecorded, WorkflowStarted
from replaykit.testing import WorkflowEnvironment, WorkflowStuck, replay_check
from replaykit.testing.clock import DEFAULT_START

DAY = 86400.0


class PaymentDeclined(Exception):
    """A business error raised by an activity and caught by type in the workflow."""


class Receipt(msgspec.Struct):
    order: str
    amount: float


@dataclasses.dataclass
class Summary:
    order: str
    paid: float


@activity(name="te_charge")
def te_charge(ctx: Any, order: str, amount: float) -> Receipt:
    if amount > 100:
        raise PaymentDeclined(f"{amount} is over the limit")
    return Receipt(order=order, amount=amount)


@activity(name="te_fetch")
async def te_fetch(ctx: Any, key: str) -> str:
    await asyncio.sleep(0)
    return f"fetched {key}"


@workflow(name="te_order")
def te_order(ctx: Any, amount: float) -> Generator[Command, Any, Summary]:
    receipt = yield from te_charge("o1", amount)
    assert isinstance(receipt, Receipt)
    yield Sleep(30 * DAY)
    return Summary(order=receipt.order, paid=receipt.amount)


@workflow(name="te_declines")
def te_declines(ctx: Any, amount: float) -> Generator[Command, Any, str]:
    try:
        yield te_charge("o1", amount)
    except PaymentDeclined as exc:
        assert isinstance(exc, ActivityError)
        return f"declined: {exc.message}"
    return "paid"


# -- activities -----------------------------------------------------------------------------------


def test_a_fake_replaces_the_activity_by_name() -> None:
    env = WorkflowEnvironment(
        activities={"te_charge": lambda ctx, order, amount: {"order": order, "amount": 1.0}}
    )
    assert env.run(te_order, 500.0) == Summary(order="o1", paid=1.0)


def test_an_activity_without_a_fake_runs_for_real_and_calls_are_recorded() -> None:
    run = WorkflowEnvironment().start(te_order, 20.0).run_to_completion()
    assert run.activity_calls == [("te_charge", ("o1", 20.0), {})]


def test_async_activities_are_awaited() -> None:
    @workflow(name="te_async")
    def uses_async(ctx: Any) -> Generator[Command, Any, str]:
        text = yield te_fetch("k")
        return str(text)

    assert WorkflowEnvironment().run(uses_async) == "fetched k"


def test_results_are_decoded_to_structs_and_dataclasses() -> None:
    result = WorkflowEnvironment().run(te_order, 20.0)
    assert result == Summary(order="o1", paid=20.0)


def test_activities_can_send_to_the_outbox() -> None:
    @activity(name="te_notify")
    def notify(ctx: Any, text: str) -> None:
        ctx.outbox.send({"text": text})

    @workflow(name="te_notifies")
    def notifies(ctx: Any) -> Generator[Command, Any, None]:
        yield notify("hi")

    env = WorkflowEnvironment()
    env.run(notifies)
    assert env.outbox.sent == [{"text": "hi"}]


# -- typed failures -------------------------------------------------------------------------------


def test_except_payment_declined_catches_an_activity_failure() -> None:
    assert WorkflowEnvironment().run(te_declines, 500.0) == "declined: 500.0 is over the limit"


def test_except_payment_declined_works_after_replay_from_history() -> None:
    run = WorkflowEnvironment().start(te_declines, 500.0).run_to_completion()
    decision = Interpreter(te_declines, instance_id=run.instance_id).feed(
        run.history, replaying=True
    )
    assert decision.result == "declined: 500.0 is over the limit"


def test_except_payment_declined_works_after_resuming_from_stored_json() -> None:
    from replaykit.core.history import decode_history, encode_history

    run = WorkflowEnvironment().start(te_declines, 500.0).run_to_completion()
    stored = decode_history(encode_history(run.history[:-1]))  # crash before the last event
    resumed = WorkflowEnvironment().resume(te_declines, stored)
    assert resumed.result() == "declined: 500.0 is over the limit"


def test_a_local_error_class_is_resolved_once_registered() -> None:
    @register_error
    class LocalDeclined(Exception):
        pass

    def decline(ctx: Any, order: str, amount: float) -> None:
        raise LocalDeclined("nope")

    @workflow(name="te_local_error")
    def local(ctx: Any) -> Generator[Command, Any, str]:
        try:
            yield te_charge("o1", 1.0)
        except LocalDeclined:
            return "caught by type"
        return "paid"

    assert WorkflowEnvironment(activities={"te_charge": decline}).run(local) == "caught by type"


def test_a_failed_workflow_raises_workflow_failed_with_the_type_name() -> None:
    @workflow(name="te_uncaught")
    def uncaught(ctx: Any) -> Generator[Command, Any, None]:
        yield te_charge("o1", 500.0)

    with pytest.raises(WorkflowFailed) as info:
        WorkflowEnvironment().run(uncaught)
    assert info.value.type_name.endswith("PaymentDeclined")
    assert info.value.status == "failed"


# -- virtual clock --------------------------------------------------------------------------------


def test_a_sleep_of_30_days_completes_at_once_on_the_virtual_clock() -> None:
    env = WorkflowEnvironment()
    begin = env.clock.now
    wall = time.perf_counter()
    env.run(te_order, 20.0)
    assert time.perf_counter() - wall < 1.0
    assert env.clock.now - begin == 30 * DAY


def test_advance_fires_only_the_timers_that_are_due() -> None:
    env = WorkflowEnvironment()
    run = env.start(te_order, 20.0)
    run.advance(29 * DAY)
    assert not run.finished
    run.advance(DAY)
    assert run.status == "completed"


# -- events and messages --------------------------------------------------------------------------


@workflow(name="te_waits")
def te_waits(ctx: Any) -> Generator[Command, Any, Any]:
    ev = yield WaitEvent("paid", match={"order": "o1"})
    return ev.data


def test_an_event_sent_after_the_wait_resumes_the_workflow() -> None:
    run = WorkflowEnvironment().start(te_waits)
    assert run.status == "waiting"  # as App.status(id).status says of a parked instance
    run.send_event("paid", {"order": "o1"})
    assert run.result() == {"order": "o1"}


def test_an_event_sent_before_the_wait_is_kept_until_the_workflow_waits() -> None:
    @workflow(name="te_late_wait")
    def late_wait(ctx: Any) -> Generator[Command, Any, Any]:
        yield Sleep(60)
        ev = yield WaitEvent("paid")
        return ev.data

    run = WorkflowEnvironment().start(late_wait)
    run.send_event("paid", 42)
    assert run.result() == 42


def test_an_event_that_does_not_match_is_not_delivered() -> None:
    run = WorkflowEnvironment().start(te_waits)
    run.send_event("paid", {"order": "other"})
    with pytest.raises(WorkflowStuck, match="WaitEvent 'paid'"):
        run.result()


@pytest.mark.parametrize(
    ("data", "match", "fits"),
    [
        ({}, {"k": None}, False),  # the key must be present, also for null (as in every database)
        ({"k": None}, {"k": None}, True),
        ({"k": 1}, {"k": True}, False),  # booleans are not numbers
        ({"k": 1.0}, {"k": 1}, True),
    ],
)
def test_match_follows_the_json_rule_of_the_databases(
    data: dict[str, Any], match: dict[str, Any], fits: bool
) -> None:
    @workflow(name="te_match_rule")
    def waits(ctx: Any) -> Generator[Command, Any, Any]:
        ev = yield WaitEvent("paid", match=match)
        return ev.data

    run = WorkflowEnvironment().start(waits)
    run.send_event("paid", data)
    assert run.finished is fits


def test_send_message_is_received_with_its_metadata() -> None:
    @workflow(name="te_receives")
    def receives(ctx: Any) -> Generator[Command, Any, Any]:
        msg = yield Receive("inbox", timeout=60)
        assert isinstance(msg, Message)
        return [msg.data, msg.metadata]

    run = WorkflowEnvironment().start(receives)
    run.send_message("inbox", {"x": 1}, metadata={"from": "test"})
    assert run.result() == [{"x": 1}, {"from": "test"}]


def test_a_published_message_reaches_a_subscriber() -> None:
    @workflow(name="te_subscriber")
    def subscriber(ctx: Any) -> Generator[Command, Any, Any]:
        yield Subscribe("news")
        msg = yield Receive("news")
        return msg.data

    @workflow(name="te_publisher")
    def publisher(ctx: Any) -> Generator[Command, Any, None]:
        yield Publish("news", "hello")

    env = WorkflowEnvironment()
    sub = env.start(subscriber)
    env.run(publisher)
    assert sub.result() == "hello"
    assert [m.data for m in env.published] == ["hello"]


@workflow(name="te_listener")
def te_listener(ctx: Any, mode: str) -> Generator[Command, Any, Any]:
    yield Subscribe("jobs", mode=mode)  # type: ignore[arg-type]
    try:
        msg = yield Receive("jobs", timeout=60)
    except TimeoutError:
        return None
    return msg.data


@workflow(name="te_job_publisher")
def te_job_publisher(ctx: Any, data: str) -> Generator[Command, Any, None]:
    yield Publish("jobs", data)


def test_a_message_goes_to_every_broadcast_subscriber_and_one_competing_one() -> None:
    env = WorkflowEnvironment()
    runs = [env.start(te_listener, mode) for mode in ("competing", "broadcast", "competing")]
    env.run(te_job_publisher, "j1")
    env.advance(60)
    results = [run.result() for run in runs]
    assert results[1] == "j1"  # the broadcast subscriber gets it (as in every database) ...
    assert {results[0], results[2]} == {"j1", None}  # ... and exactly one competing one


def test_a_competing_channel_keeps_messages_published_before_anyone_subscribed() -> None:
    env = WorkflowEnvironment()
    env.run(te_job_publisher, "early")
    assert env.start(te_listener, "competing").result() == "early"
    assert env.start(te_listener, "broadcast").result() is None  # later messages only


def test_a_finished_subscriber_takes_no_more_messages() -> None:
    env = WorkflowEnvironment()
    first = env.start(te_listener, "competing")
    env.run(te_job_publisher, "one")
    assert first.result() == "one"
    env.run(te_job_publisher, "two")  # kept for the next competing subscriber
    assert env.start(te_listener, "competing").result() == "two"


@workflow(name="te_late_taker")
def te_late_taker(ctx: Any) -> Generator[Command, Any, Any]:
    yield Subscribe("pool", mode="competing")
    yield Sleep(10)
    try:
        msg = yield Receive("pool", timeout=5)
    except TimeoutError:
        return None
    return msg.data


def test_instances_woken_together_run_in_id_order_as_a_database_claims_them() -> None:
    # b's timer is set before a's; both fire at once. A database's worker claims runnable
    # instances by (updated_at, instance_id), so "a" runs first and takes the one message.
    env = WorkflowEnvironment()
    b = env.start(te_late_taker, instance_id="b")
    a = env.start(te_late_taker, instance_id="a")
    env.publish("pool", "only one")
    env.advance(20)
    assert (a.result(), b.result()) == ("only one", None)


@workflow(name="te_sleep_zero")
def te_sleep_zero(ctx: Any) -> Generator[Command, Any, str]:
    yield Sleep(0)
    yield SleepUntil(DEFAULT_START - 60)
    return "woke"


def test_a_timer_already_due_fires_without_moving_the_clock() -> None:
    # A database's timer loop fires a due timer at once; the clock is not moved for it.
    env = WorkflowEnvironment()
    run = env.start(te_sleep_zero)
    assert run.finished and run.result() == "woke"
    run.cancel("too late")  # so a cancel sent next cannot overtake the sleep
    assert run.status == "completed"
    assert env.clock.now == DEFAULT_START


# -- cancellation, children, recur ----------------------------------------------------------------


def test_cancel_runs_compensations_in_reverse_order() -> None:
    undone: list[str] = []

    @activity(name="te_unbook")
    def unbook(ctx: Any, what: str) -> None:
        undone.append(what)

    @activity(name="te_book", compensate=unbook)
    def book(ctx: Any, what: str) -> str:
        return what

    @workflow(name="te_trip")
    def trip(ctx: Any) -> Generator[Command, Any, None]:
        yield book("flight")
        yield book("hotel")
        yield WaitEvent("confirmed")

    run = WorkflowEnvironment().start(trip)
    run.cancel("customer")
    assert run.status == "cancelled"
    assert undone == ["hotel", "flight"]
    assert run.decision.error is not None and run.decision.error.message == "customer"
    with pytest.raises(WorkflowCancelled) as info:
        run.result()
    assert info.value.reason == "customer"


def test_cancel_without_a_reason_keeps_the_default_message_and_an_empty_reason() -> None:
    @workflow(name="te_waits_forever")
    def waits(ctx: Any) -> Generator[Command, Any, None]:
        yield WaitEvent("never")

    run = WorkflowEnvironment().start(waits)
    run.cancel()
    with pytest.raises(WorkflowCancelled) as info:
        run.result()
    assert info.value.reason == "" and "workflow was cancelled" in str(info.value)


@workflow(name="te_child")
def te_child(ctx: Any, n: int) -> Generator[Command, Any, int]:
    yield Sleep(DAY)
    if n < 0:
        raise PaymentDeclined("negative")
    return n * 2


def test_a_child_workflow_result_is_returned_to_the_parent() -> None:
    @workflow(name="te_parent")
    def parent(ctx: Any) -> Generator[Command, Any, Any]:
        a = yield from te_child.child(2)
        child_id = yield te_child.start_child(3, parent_close="abandon")
        return [a, child_id]

    env = WorkflowEnvironment()
    assert env.run(parent, instance_id="p") == [4, "p/2"]
    assert env.runs["p/1"].history[0] == WorkflowStarted(
        at=env.runs["p/1"].history[0].at,
        workflow="te_child",
        instance_id="p/1",
        input=2,
        parent_id="p",
    )
    assert env.runs["p/2"].result() == 6


def test_a_failed_child_raises_child_workflow_error_of_the_original_type() -> None:
    @workflow(name="te_parent_of_failure")
    def parent(ctx: Any) -> Generator[Command, Any, str]:
        try:
            yield te_child.child(-1)
        except PaymentDeclined as exc:
            assert isinstance(exc, ChildWorkflowError)
            return f"child failed: {exc.message}"
        return "ok"

    assert WorkflowEnvironment().run(parent) == "child failed: negative"


def test_a_child_that_cannot_start_fails_the_parents_step_as_in_production() -> None:
    @workflow(name="te_parent_of_nobody")
    def parent(ctx: Any) -> Generator[Command, Any, str]:
        try:
            yield StartChild(workflow="te_nobody")
        except ChildWorkflowError as exc:
            return exc.type_name
        return "started"

    assert WorkflowEnvironment().run(parent) == "replaykit.core.errors.UnknownWorkflow"


def test_a_child_started_without_waiting_knows_its_parent() -> None:
    @workflow(name="te_fire_and_forget")
    def parent(ctx: Any) -> Generator[Command, Any, Any]:
        return (yield te_child.start_child(1))

    env = WorkflowEnvironment()
    assert env.run(parent, instance_id="f") == "f/1"
    started = env.runs["f/1"].history[0]
    assert isinstance(started, WorkflowStarted) and started.parent_id == "f"


def test_recur_starts_the_next_run_and_archives_the_history() -> None:
    @workflow(name="te_counter")
    def counter(ctx: Any, n: int) -> Generator[Command, Any, int]:
        yield Sleep(DAY)
        if n < 3:
            yield Recur(n + 1)
        return n

    env = WorkflowEnvironment()
    run = env.start(counter, 0, instance_id="c")
    assert run.result() == 3
    assert len(run.archived) == 3
    first = run.history[0]
    assert isinstance(first, WorkflowStarted)
    assert (first.run, first.input, first.continued_from) == (4, 3, "c@3")  # as in production
    assert env.clock.now - run.archived[0][0].at == 4 * DAY


# -- recorded values ------------------------------------------------------------------------------


def test_now_uuid_random_and_side_effect_are_recorded_and_replayed_identically() -> None:
    calls: list[int] = []

    def roll() -> int:
        calls.append(1)
        return 4

    @workflow(name="te_values")
    def values(ctx: Any) -> Generator[Command, Any, Any]:
        now = yield Now()
        yield Sleep(DAY)
        later = yield Now()
        uid = yield Uuid()
        rnd = yield Random()
        dice = yield SideEffect(roll)
        return [now.isoformat(), later.isoformat(), uid, rnd, dice]

    env = WorkflowEnvironment()
    run = env.start(values).run_to_completion()
    result = run.decision.result
    assert result[0] == "2026-01-01T00:00:00+00:00"
    assert result[1] == "2026-01-02T00:00:00+00:00"
    assert len(result[2]) == 36 and 0 <= result[3] < 1 and result[4] == 4
    recorded = [e.kind for e in run.history if isinstance(e, ValueRecorded)]
    assert recorded == ["Now", "Now", "Uuid", "Random", "SideEffect"]
    replayed = Interpreter(values, instance_id=run.instance_id).feed(run.history, replaying=True)
    assert replayed.result == result
    assert calls == [1]


def test_different_seeds_give_different_uuids() -> None:
    @workflow(name="te_uuid")
    def uid(ctx: Any) -> Generator[Command, Any, str]:
        value = yield Uuid()
        return str(value)

    assert WorkflowEnvironment(seed=1).run(uid) != WorkflowEnvironment(seed=2).run(uid)


# -- crash, resume and replay checks -------------------------------------------------------------


def test_resume_after_a_crash_does_not_rerun_completed_activities() -> None:
    env = WorkflowEnvironment()
    run = env.start(te_order, 20.0)
    assert not run.finished  # sleeping 30 days, the charge is recorded
    resumed_env = WorkflowEnvironment()
    resumed = resumed_env.resume(te_order, list(run.history))
    assert resumed.result() == Summary(order="o1", paid=20.0)
    assert resumed.activity_calls == []
    assert resumed_env.clock.now == run.history[0].at + 30 * DAY


def test_replay_check_reports_non_determinism() -> None:
    run = WorkflowEnvironment().start(te_order, 20.0).run_to_completion()
    assert replay_check(te_order, run.history).ok

    @workflow(name="te_order")
    def changed(ctx: Any, amount: float) -> Generator[Command, Any, None]:
        yield Sleep(30 * DAY)

    report = replay_check(changed, run.history)
    assert not report.ok
    assert report.step == 1
    assert "history has ActivityCall 'te_charge', code yielded Sleep" in report.error


# -- activity timeouts (enforced as in production, in real time) ----------------------------------


def test_an_activity_past_its_timeout_fails_with_activity_timeout_in_the_environment() -> None:
    release = threading.Event()
    seen: dict[str, Any] = {}

    @activity(name="te_slow_sync", timeout=0.2, retry=RetryPolicy(initial_interval=0.01))
    def slow_sync(ctx: Any) -> str:
        if ctx.attempt == 1:
            release.wait(10)
            seen["abandoned"] = ctx.abandoned
        return f"attempt {ctx.attempt}"

    @activity(name="te_slow_async", timeout=0.2, retry=RetryPolicy(max_attempts=1))
    async def slow_async(ctx: Any) -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            seen["cancelled"] = True
            raise
        return "late"

    @workflow(name="te_timeouts")
    def timeouts(ctx: Any) -> Generator[Command, Any, Any]:
        first = yield slow_sync()
        try:
            yield slow_async()
        except ActivityTimeout as exc:
            return [first, exc.type_name]  # type: ignore[attr-defined]
        return [first, None]

    began = time.monotonic()
    try:
        run = WorkflowEnvironment().start(timeouts)
        assert run.result() == ["attempt 2", "replaykit.core.errors.ActivityTimeout"]
    finally:
        release.set()
    assert time.monotonic() - began < 3.0
    assert seen["cancelled"] is True
    failed = [e for e in run.history if isinstance(e, ActivityFailed)]
    assert [e.name for e in failed] == ["te_slow_sync", "te_slow_async"]
    assert "abandoned" in failed[0].error.message and "cancelled" in failed[1].error.message


# -- activity timeouts on the virtual clock ----------------------------------------------------


def _virtual_timeouts(took: list[float], retry: RetryPolicy) -> tuple[WorkflowEnvironment, Any]:
    """An environment and a workflow whose one activity (timeout 60 s) is faked by a body that
    lets ``took[i]`` seconds of virtual time pass in its attempt ``i + 1``."""

    @activity(name="te_virtual_charge", timeout=60, retry=retry)
    def charge(ctx: Any, amount: int) -> str:
        raise AssertionError("replaced by the fake")  # pragma: no cover

    def slow_charge(ctx: Any, amount: int) -> str:
        seconds = took[ctx.attempt - 1]
        if ctx.attempt == 1:
            env.clock.now += seconds
        else:
            env.advance(seconds)  # the other way to let virtual time pass
        return f"charged {amount} on attempt {ctx.attempt}"

    @workflow(name="te_virtual_timeouts")
    def charging(ctx: Any) -> Generator[Command, Any, str]:
        try:
            result: str = yield charge(5)
        except ActivityTimeout as exc:
            return f"gave up: {exc.type_name}"  # type: ignore[attr-defined]
        return result

    env = WorkflowEnvironment(activities={"te_virtual_charge": slow_charge})
    return env, charging


def test_an_activity_that_lets_more_virtual_time_pass_than_its_timeout_times_out() -> None:
    env, charging = _virtual_timeouts([90, 30], RetryPolicy(initial_interval=1))
    began, start = time.monotonic(), env.clock.now
    run = env.start(charging)
    assert run.result() == "charged 5 on attempt 2"
    assert time.monotonic() - began < 2.0  # nothing waited in real time
    [failed] = [e for e in run.history if isinstance(e, ActivityFailed)]
    assert failed.error.type == "replaykit.core.errors.ActivityTimeout"
    assert "past its timeout of 60" in failed.error.message
    assert "after 90 s of virtual time" in failed.error.message
    assert env.clock.now == start + 90 + 1 + 30  # the attempt, the retry's backoff, the retry


def test_a_virtual_activity_timeout_reaches_the_workflow_when_retries_are_used_up() -> None:
    env, charging = _virtual_timeouts([61], RetryPolicy(max_attempts=1))
    run = env.start(charging)
    assert run.result() == "gave up: replaykit.core.errors.ActivityTimeout"


def test_an_activity_that_lets_exactly_its_timeout_pass_completes() -> None:
    env, charging = _virtual_timeouts([60], RetryPolicy(max_attempts=1))
    run = env.start(charging)
    assert run.result() == "charged 5 on attempt 1"


def test_an_error_after_the_virtual_timeout_is_discarded_for_activity_timeout() -> None:
    @activity(name="te_virtual_late", timeout=10, retry=RetryPolicy(max_attempts=1))
    async def late(ctx: Any) -> str:
        raise AssertionError("replaced by the fake")  # pragma: no cover

    async def late_fake(ctx: Any) -> str:
        env.clock.now += 11
        raise ValueError("too late")

    @workflow(name="te_virtual_late_wf")
    def waits(ctx: Any) -> Generator[Command, Any, str]:
        try:
            yield late()
        except ActivityTimeout as exc:
            return str(exc)
        return "no timeout"

    env = WorkflowEnvironment(activities={"te_virtual_late": late_fake})
    assert "after 11 s of virtual time" in env.run(waits)


# -- a broken replay blocks the run, as a worker does ----------------------------------------------


def test_a_resume_that_no_longer_replays_is_blocked_until_fixed_code_resumes_it() -> None:
    @workflow(name="te_versions")
    def before(ctx: Any) -> Generator[Command, Any, str]:
        yield Sleep(10)
        yield WaitEvent("go")
        return "done"

    @workflow(name="te_versions")
    def broken(ctx: Any) -> Generator[Command, Any, str]:
        yield WaitEvent("go")  # a changed first step
        return "done"

    env = WorkflowEnvironment()
    run = env.start(before, instance_id="v1")
    run.advance(10)
    stuck = env.resume(broken, run.history)
    assert stuck.status == "blocked"
    assert isinstance(stuck.blocked, NonDeterminismError) and stuck.blocked.step == 1
    with pytest.raises(NonDeterminismError, match="step 1"):
        stuck.result()
    env.send_event("go", instance_id="v1")  # kept: nothing runs a blocked instance
    assert stuck.status == "blocked"
    fixed = env.resume(before, run.history)
    assert fixed.result() == "done"

"""The runtime end to end on each adapter: App, workers, timers, events, saga, children, recur."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from typing import Any

import msgspec
import pytest

from replaykit import (
    EventTimeout,
    InvalidInput,
    Publish,
    Receive,
    Recur,
    RetryPolicy,
    Sleep,
    Subscribe,
    TerminalError,
    UnknownWorkflow,
    WaitEvent,
    WorkflowCancelled,
    WorkflowFailed,
    activity,
    workflow,
)
from replaykit.core.history import ActivityCompleted, TimerFired, WorkflowStarted, encode_event
from replaykit.runtime.app import App
from replaykit.storage import InstanceRecord

CALLS: list[str] = []
LOCK = threading.Lock()


def record(name: str) -> None:
    with LOCK:
        CALLS.append(name)


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CALLS.clear()


class Order(msgspec.Struct):
    id: str
    amount: float


class Receipt(msgspec.Struct):
    id: str
    total: float


@activity
def add_tax(ctx: Any, amount: float) -> float:
    record("add_tax")
    return round(amount * 1.2, 2)


@activity
async def charge_async(ctx: Any, order_id: str, total: float) -> dict[str, Any]:
    record("charge")
    return {"order": order_id, "total": total}


@activity
def notify(ctx: Any, order_id: str) -> str:
    record("notify")
    return f"sent:{order_id}"


@workflow
def checkout(ctx: Any, order: Order) -> Generator[Any, Any, Receipt]:
    total = yield add_tax(order.amount)
    yield charge_async(order.id, total)
    yield notify(order.id)
    return Receipt(id=order.id, total=total)


def test_three_activity_workflow_completes_with_typed_result(make_app: Callable[..., App]) -> None:
    with make_app() as app:
        handle = app.start_workflow(checkout, Order("o1", 10.0))
        assert handle.result(timeout=20) == Receipt(id="o1", total=12.0)
        kinds = [type(e).__name__ for e in app.history(handle.instance_id)]
    assert kinds == ["WorkflowStarted", *["ActivityCompleted"] * 3]
    assert CALLS == ["add_tax", "charge", "notify"]


@workflow(name="app_waits_for_go")
def waits_for_go(ctx: Any) -> Generator[Any, Any, Any]:
    event = yield WaitEvent("app.go")
    return event.data


def test_result_calls_waiting_for_one_instance_all_get_its_end_and_leave_no_waiter(
    make_app: Callable[..., App],
) -> None:
    with make_app() as app:
        handle = app.start_workflow(waits_for_go)
        with pytest.raises(TimeoutError):
            handle.result(timeout=0.05)
        assert app._waiters == {}  # a call that timed out is no longer waiting
        results: list[Any] = []

        def wait() -> None:
            results.append(handle.result(timeout=20))

        threads = [threading.Thread(target=wait) for _ in range(3)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(app._waiters.get(handle.instance_id, ())) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)  # parked until the instance runs here again
        app.send_event("app.go", {"n": 1})
        for thread in threads:
            thread.join(20)
        assert results == [{"n": 1}] * 3
        assert app._waiters == {}


def test_starting_the_same_instance_id_twice_is_idempotent(make_app: Callable[..., App]) -> None:
    with make_app() as app:
        first = app.start_workflow(checkout, Order("o2", 1.0), instance_id="same")
        second = app.start_workflow(checkout, Order("o2", 1.0), instance_id="same")
        assert first.result(timeout=20) == second.result(timeout=20)
    assert CALLS.count("add_tax") == 1


def test_unknown_workflow_name_raises_and_stores_nothing(make_app: Callable[..., App]) -> None:
    app = make_app(workers=False)
    with pytest.raises(UnknownWorkflow, match="no workflow named 'nope'"):
        app.start_workflow("nope", {})
    assert app.list_instances() == []


def test_input_that_does_not_decode_raises_invalid_input(make_app: Callable[..., App]) -> None:
    app = make_app(workers=False)
    with pytest.raises(InvalidInput, match="input of workflow 'checkout'"):
        app.start_workflow(checkout, {"id": 3})
    assert app.list_instances() == []


@workflow
def wait_payment(ctx: Any, order_id: str):  # type: ignore[no-untyped-def]
    try:
        event = yield WaitEvent("payment.done", timeout=30)
    except EventTimeout:
        return "timed out"
    return event.data


def _wait_status(app: App, instance_id: str, status: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while app.status(instance_id).status != status:
        assert time.monotonic() < deadline, f"{instance_id} never became {status}"
        time.sleep(0.01)


def test_event_sent_before_the_wait_is_kept_for_the_target(make_app: Callable[..., App]) -> None:
    app = make_app(workers=False)
    app.start_workflow(wait_payment, "o3", instance_id="w1")
    app.send_event("payment.done", {"paid": True}, instance_id="w1")
    with app, make_app() as worker_app:
        assert worker_app.result("w1", timeout=20) == {"paid": True}


def test_broadcast_event_wakes_a_waiting_instance(make_app: Callable[..., App]) -> None:
    with make_app() as app:
        app.start_workflow(wait_payment, "o4", instance_id="w2")
        _wait_status(app, "w2", "waiting")
        assert app.send_event("payment.done", {"n": 1}, source="test", id="evt-1")
        assert not app.send_event("payment.done", {"n": 2}, source="test", id="evt-1")
        assert app.result("w2", timeout=20) == {"n": 1}


@workflow
def short_wait(ctx: Any):  # type: ignore[no-untyped-def]
    try:
        yield WaitEvent("never", timeout=0.2)
    except EventTimeout as exc:
        return f"timeout at step {exc.step}"
    return "event"


def test_event_timeout_is_thrown_into_the_workflow(make_app: Callable[..., App]) -> None:
    with make_app() as app:
        assert app.start_workflow(short_wait).result(timeout=20) == "timeout at step 1"


@workflow
def nap(ctx: Any):  # type: ignore[no-untyped-def]
    yield Sleep(3600)
    return "rested"


class ShiftedClock:
    """Real time plus an offset the test moves: the App's timers are due only when the test says."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset


def test_sleep_parks_the_instance_and_a_timer_resumes_it(make_app: Callable[..., App]) -> None:
    # The timer is due only after the test shifts the clock: with a real 0.2 s Sleep the
    # instance was "waiting" for 0.2 s only, and on a loaded machine one status() call (0.4 s
    # measured) could straddle the whole window, so the wait below never saw it.
    clock = ShiftedClock()
    with make_app(clock=clock) as app:
        handle = app.start_workflow(nap)
        _wait_status(app, handle.instance_id, "waiting")
        worker = app.worker
        assert worker is not None
        deadline = time.monotonic() + 5  # the executor thread returns right after its commit
        while worker.active_count() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert worker.active_count() == 0, "a waiting instance still holds a worker slot"
        assert app.status(handle.instance_id).status == "waiting"
        clock.offset = 3600
        assert handle.result(timeout=20) == "rested"
        assert [type(e) for e in app.history(handle.instance_id)] == [WorkflowStarted, TimerFired]


ATTEMPTS: dict[str, int] = {}


@activity(retry=RetryPolicy(max_attempts=3, initial_interval=0.05))
def flaky(ctx: Any, key: str) -> int:
    ATTEMPTS[key] = ctx.attempt
    if ctx.attempt < 3:
        raise ConnectionError(f"attempt {ctx.attempt} failed")
    return ctx.attempt


@workflow
def uses_flaky(ctx: Any, key: str):  # type: ignore[no-untyped-def]
    return (yield flaky(key))


def test_failed_activity_is_retried_after_a_durable_backoff(make_app: Callable[..., App]) -> None:
    with make_app() as app:
        handle = app.start_workflow(uses_flaky, "k1")
        assert handle.result(timeout=20) == 3
        kinds = [type(e).__name__ for e in app.history(handle.instance_id)]
    assert kinds.count("ActivityFailed") == 2 and kinds.count("RetryTimerFired") == 2


@activity
def unreserve(ctx: Any, item: str) -> None:
    record(f"unreserve:{item}:{ctx.compensating_result}")


@activity(compensate=unreserve)
def reserve(ctx: Any, item: str) -> str:
    record(f"reserve:{item}")
    return f"r-{item}"


class Declined(TerminalError):
    pass


@activity
def pay(ctx: Any, amount: float) -> None:
    record("pay")
    raise Declined(f"declined {amount}")


@workflow
def saga(ctx: Any, amount: float):  # type: ignore[no-untyped-def]
    yield reserve("a")
    yield reserve("b")
    yield pay(amount)
    return "paid"


def test_terminal_error_fails_at_once_and_compensates_in_reverse(
    make_app: Callable[..., App],
) -> None:
    with make_app() as app:
        handle = app.start_workflow(saga, 5.0)
        with pytest.raises(WorkflowFailed) as info:
            handle.result(timeout=20)
    assert info.value.type_name.endswith("Declined")
    assert CALLS == ["reserve:a", "reserve:b", "pay", "unreserve:b:r-b", "unreserve:a:r-a"]


@workflow
def reserve_then_wait(ctx: Any):  # type: ignore[no-untyped-def]
    yield reserve("x")
    yield WaitEvent("go")
    return "done"


def test_cancel_of_a_waiting_instance_runs_compensations(make_app: Callable[..., App]) -> None:
    with make_app() as app:
        handle = app.start_workflow(reserve_then_wait)
        _wait_status(app, handle.instance_id, "waiting")
        handle.cancel("customer asked")
        with pytest.raises(WorkflowCancelled) as info:
            handle.result(timeout=20)
        assert info.value.reason == "customer asked"
        record = app.status(handle.instance_id)
        assert record.status == "cancelled" and record.error["message"] == "customer asked"
    assert CALLS == ["reserve:x", "unreserve:x:r-x"]


def test_a_cancelled_waiting_instance_reads_cancelling_until_a_worker_ends_it(
    make_app: Callable[..., App],
) -> None:
    with make_app() as app:
        handle = app.start_workflow(reserve_then_wait)
        _wait_status(app, handle.instance_id, "waiting")
    client = make_app(workers=False)
    assert client.cancel(handle.instance_id, "changed my mind").status == "cancelling"
    assert client.status(handle.instance_id).status == "cancelling"
    listed = client.list_instances(status="cancelling")
    assert [r.instance_id for r in listed] == [handle.instance_id]
    with make_app() as app:
        with pytest.raises(WorkflowCancelled):
            app.result(handle.instance_id, timeout=20)
        assert app.status(handle.instance_id).status == "cancelled"


@workflow
def child_sum(ctx: Any, numbers: list[int]):  # type: ignore[no-untyped-def]
    yield Sleep(0.01)
    return sum(numbers)


@workflow
def parent(ctx: Any):  # type: ignore[no-untyped-def]
    a = yield child_sum.child([1, 2, 3])
    b = yield from child_sum.child([10, 20])
    return a + b


def test_child_workflows_return_their_results(make_app: Callable[..., App]) -> None:
    with make_app(workflows=[parent, child_sum]) as app:
        handle = app.start_workflow(parent, instance_id="p1")
        assert handle.result(timeout=20) == 36
        assert app.status("p1/1").parent_id == "p1"


@workflow
def counter(ctx: Any, n: int):  # type: ignore[no-untyped-def]
    if n < 3:
        yield Recur(n + 1)
    return n


def test_recur_archives_history_and_links_runs(make_app: Callable[..., App]) -> None:
    with make_app() as app:
        handle = app.start_workflow(counter, 0, instance_id="c1")
        assert handle.result(timeout=20) == 3
        status = app.status("c1")
        assert status.run == 4
        assert status.continued_from == "c1@3"
        assert len(app.storage.load_archived_history("c1", 1)) == 1


def _session_sql(url: str) -> tuple[str, str]:
    if url.startswith("sqlite"):
        return ("CREATE TABLE IF NOT EXISTS ledger (id TEXT)", "INSERT INTO ledger VALUES (?)")
    return ("CREATE TABLE IF NOT EXISTS ledger (id TEXT)", "INSERT INTO ledger VALUES (%s)")


FAIL_LEDGER = {"on": True}


@activity(retry=RetryPolicy(max_attempts=1))
def write_ledger(ctx: Any, url: str, entry: str) -> str:
    create, insert = _session_sql(url)
    ctx.session.execute(create)
    ctx.session.execute(insert, [entry])
    ctx.outbox.send({"type": "ledger.written", "source": "/test", "data": {"entry": entry}})
    if FAIL_LEDGER["on"] and entry == "bad":
        raise ValueError("boom after writing")
    return entry


@workflow
def ledger(ctx: Any, args: list[str]):  # type: ignore[no-untyped-def]
    url, entry = args
    return (yield write_ledger(url, entry))


def _ledger_rows(app: App, url: str) -> list[str]:
    with app.storage.transaction() as tx:
        rows = tx.session.execute("SELECT id FROM ledger ORDER BY id").fetchall()
    return [r[0] for r in rows]


def test_transactional_activity_commits_writes_and_outbox_with_its_result(
    make_app: Callable[..., App], database_url: str
) -> None:
    delivered: list[dict[str, Any]] = []
    with make_app(outbox_delivery=delivered.append) as app:
        assert app.start_workflow(ledger, [database_url, "good"]).result(timeout=20) == "good"
        with pytest.raises(WorkflowFailed, match="boom after writing"):
            app.start_workflow(ledger, [database_url, "bad"]).result(timeout=20)
        assert _ledger_rows(app, database_url) == ["good"]
        deadline = time.monotonic() + 10
        while not delivered and time.monotonic() < deadline:
            time.sleep(0.02)
    assert [e["data"] for e in delivered] == [{"entry": "good"}]
    assert delivered[0]["type"] == "ledger.written"


def test_restart_resumes_a_waiting_instance_without_rerunning_activities(
    make_app: Callable[..., App],
) -> None:
    with make_app() as app:
        app.start_workflow(reserve_then_wait, instance_id="r1")
        _wait_status(app, "r1", "waiting")
    assert CALLS == ["reserve:x"]
    with make_app() as app2:
        app2.send_event("go", instance_id="r1")
        assert app2.result("r1", timeout=20) == "done"
    assert CALLS == ["reserve:x"]


def test_an_expired_lease_of_a_crashed_worker_is_taken_over(
    make_app: Callable[..., App],
) -> None:
    client = make_app(workers=False)
    started = WorkflowStarted(
        workflow="checkout", instance_id="crashed", input={"id": "z", "amount": 1.0}
    )
    now = time.time()
    client.registry.add_workflow(checkout)
    rec = InstanceRecord(
        instance_id="crashed",
        workflow="checkout",
        status="running",
        input={"id": "z", "amount": 1.0},
        lease_owner="dead-worker",
        lease_expires_at=now - 1,
        created_at=now,
        updated_at=now,
        history_len=1,
    )
    client.storage.create_instance(rec, encode_event(started))
    with make_app() as app:
        assert app.result("crashed", timeout=20) == Receipt(id="z", total=1.2)
        assert app.status("crashed").lease_owner is None


@workflow
def listener(ctx: Any, mode: str):  # type: ignore[no-untyped-def]
    yield Subscribe("news", mode=mode)  # type: ignore[arg-type]
    got = []
    for _ in range(2):
        message = yield Receive("news", timeout=5)
        got.append(message.data)
    return got


@workflow
def announcer(ctx: Any):  # type: ignore[no-untyped-def]
    yield Publish("news", "a")
    yield Publish("news", "b")
    return "sent"


def test_broadcast_channel_delivers_every_message_to_every_subscriber(
    make_app: Callable[..., App],
) -> None:
    with make_app() as app:
        listeners = [app.start_workflow(listener, "broadcast") for _ in range(3)]
        for h in listeners:
            _wait_status(app, h.instance_id, "waiting")
        app.start_workflow(announcer).result(timeout=20)
        assert [h.result(timeout=20) for h in listeners] == [["a", "b"]] * 3


@workflow
def one_message(ctx: Any):  # type: ignore[no-untyped-def]
    yield Subscribe("jobs", mode="competing")
    try:
        message = yield Receive("jobs", timeout=1.0)
    except EventTimeout:
        return None
    return message.data


def test_competing_channel_gives_each_message_to_exactly_one(make_app: Callable[..., App]) -> None:
    with make_app() as app:
        workers = [app.start_workflow(one_message) for _ in range(4)]
        for h in workers:
            _wait_status(app, h.instance_id, "waiting")
        app.publish("jobs", "j1")
        app.publish("jobs", "j2")
        results = [h.result(timeout=20) for h in workers]
    assert sorted(r for r in results if r is not None) == ["j1", "j2"]
    assert results.count(None) == 2


def test_async_context_manager_runs_workers(make_app: Callable[..., App]) -> None:
    import asyncio

    async def main() -> Any:
        async with make_app() as app:
            handle = await app.start_workflow_async(checkout, Order("o9", 5.0))
            return await handle.result_async(timeout=20)

    assert asyncio.run(main()) == Receipt(id="o9", total=6.0)


def test_activity_completed_events_record_the_attempt(make_app: Callable[..., App]) -> None:
    with make_app() as app:
        handle = app.start_workflow(checkout, Order("o10", 2.0))
        handle.result(timeout=20)
        events = app.history(handle.instance_id)
    assert all(e.attempt == 1 for e in events if isinstance(e, ActivityCompleted))

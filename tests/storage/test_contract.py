"""The storage contract: one suite, run against every adapter (see conftest ``storage``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from replaykit.core.errors import InvalidInput, LeaseLost, StorageError, WorkflowNotFound
from replaykit.core.history import (
    CancelRequested,
    ChildCompleted,
    EventData,
    EventReceived,
    EventTimedOut,
    MessageReceived,
    TimerFired,
    WorkflowStarted,
    encode_event,
)
from replaykit.storage import (
    ChildSpec,
    InstanceRecord,
    OutboxSpec,
    PublishSpec,
    Storage,
    StoredEvent,
    SubscriptionSpec,
    WaitSpec,
)
from storage_adapters.migrations import load_migrations

from .helpers import (
    LEASE,
    OWNER,
    create,
    history,
    inbox_events,
    lease_ends,
    run_threads,
    running,
    step,
    timer,
    wait_event,
    wait_message,
)


# -- instances ----------------------------------------------------------------------------------
def test_create_is_idempotent(storage: Storage) -> None:
    first = create(storage, "a", input={"n": 1})
    again, created = storage.create_instance(first, b'{"e":"WorkflowStarted"}')
    assert not created
    assert again.input == {"n": 1}
    assert first.status == "pending"
    assert first.history_len == 1
    assert history(storage, "a") == [WorkflowStarted(workflow="wf", instance_id="a")]
    assert storage.get_instance("missing") is None


def test_create_with_a_lease_runs_at_once(storage: Storage) -> None:
    stored = create(storage, "a")
    assert stored.lease_owner is None
    from replaykit.storage import InstanceRecord

    record = InstanceRecord(
        instance_id="b", workflow="wf", status="running", lease_owner=OWNER, lease_expires_at=9.0
    )
    held, created = storage.create_instance(record, b"{}")
    assert created and held.status == "running" and held.lease_owner == OWNER
    assert [r.instance_id for r in storage.claim("other", limit=5, lease_seconds=1, now=1)] == ["a"]


# -- leases -------------------------------------------------------------------------------------
def test_claim_never_gives_an_instance_to_two_owners(storage: Storage) -> None:
    for i in range(6):
        create(storage, f"i{i}", now=float(i))
    first = storage.claim("w1", limit=4, lease_seconds=LEASE, now=10.0)
    second = storage.claim("w2", limit=4, lease_seconds=LEASE, now=10.0)
    assert [r.instance_id for r in first] == ["i0", "i1", "i2", "i3"]
    assert [r.instance_id for r in second] == ["i4", "i5"]
    assert all(r.status == "running" and lease_ends(r, 10.0 + LEASE) for r in first)
    assert storage.claim("w3", limit=4, lease_seconds=LEASE, now=10.0) == []


def test_concurrent_claims_are_disjoint(storage: Storage) -> None:
    for i in range(40):
        create(storage, f"i{i:02d}")
    claimed = run_threads(
        4, lambda n: storage.claim(f"w{n}", limit=40, lease_seconds=LEASE, now=2.0)
    )
    ids = [r.instance_id for batch in claimed for r in batch]
    assert sorted(ids) == [f"i{i:02d}" for i in range(40)]


def test_claim_filters_by_workflow(storage: Storage) -> None:
    create(storage, "a", workflow="x")
    create(storage, "b", workflow="y")
    claimed = storage.claim("w", limit=5, lease_seconds=1, now=2, workflows=["y"])
    assert [r.instance_id for r in claimed] == ["b"]
    assert storage.claim("w", limit=5, lease_seconds=1, now=2, workflows=[]) == []


def test_expired_lease_is_taken_over(storage: Storage) -> None:
    running(storage, "a", now=1.0)
    assert storage.claim("w2", limit=1, lease_seconds=LEASE, now=1.0 + LEASE - 1) == []
    taken = storage.claim("w2", limit=1, lease_seconds=LEASE, now=1.0 + LEASE + 1)
    assert [(r.instance_id, r.lease_owner) for r in taken] == [("a", "w2")]
    with pytest.raises(LeaseLost):
        storage.commit(step(storage, "a", events=[b"{}"]))


def test_claim_instance_checks_the_owner(storage: Storage) -> None:
    running(storage, "a", now=1.0)
    assert storage.claim_instance("a", "w2", lease_seconds=LEASE, now=2.0) is None
    again = storage.claim_instance("a", OWNER, lease_seconds=LEASE, now=2.0)
    assert lease_ends(again, 2.0 + LEASE)
    assert storage.claim_instance("missing", OWNER, lease_seconds=LEASE, now=2.0) is None


def test_heartbeat_extends_held_leases_and_reports_lost_ones(storage: Storage) -> None:
    running(storage, "a")
    running(storage, "b")
    storage.claim("w2", limit=5, lease_seconds=LEASE, now=100.0)  # both expired: taken over
    running(storage, "c", now=100.0)
    lost = storage.heartbeat(["a", "b", "c"], OWNER, lease_seconds=LEASE, now=101.0)
    assert lost == ["a", "b"]
    assert lease_ends(storage.get_instance("c"), 101.0 + LEASE)


def test_release_makes_the_instance_pending(storage: Storage) -> None:
    running(storage, "a")
    storage.release("a", "someone-else")
    assert storage.get_instance("a").status == "running"  # type: ignore[union-attr]
    storage.release("a", OWNER)
    record = storage.get_instance("a")
    assert record is not None and record.status == "pending" and record.lease_owner is None


# -- steps --------------------------------------------------------------------------------------
def test_commit_appends_history_and_sets_status(storage: Storage) -> None:
    running(storage, "a")
    events = [encode_event(TimerFired(step=1)), encode_event(TimerFired(step=2))]
    result = storage.commit(step(storage, "a", events=events))
    assert not result.released
    record = storage.get_instance("a")
    assert record is not None and record.status == "running" and record.history_len == 3
    assert lease_ends(record, 2.0 + LEASE)
    assert storage.load_history("a")[1:] == events
    result = storage.commit(step(storage, "a", status="completed", output={"ok": True}))
    assert result.released
    record = storage.get_instance("a")
    assert record is not None
    assert (record.status, record.output, record.lease_owner) == ("completed", {"ok": True}, None)


def test_failed_status_stores_the_error(storage: Storage) -> None:
    running(storage, "a")
    error = {"type": "ValueError", "message": "bad"}
    storage.commit(step(storage, "a", status="failed", error=error))
    record = storage.get_instance("a")
    assert record is not None and record.status == "failed" and record.error == error


def test_lease_lost_writes_nothing(storage: Storage) -> None:
    running(storage, "a")
    storage.claim("w2", limit=1, lease_seconds=LEASE, now=1000.0)
    commit = step(
        storage,
        "a",
        events=[encode_event(TimerFired(step=1))],
        timers=[timer(5, 3.0)],
        outbox=[OutboxSpec(event={"type": "x"})],
        children=[
            ChildSpec(
                instance_id="kid", workflow="wf", input=None, started_event=b"{}", parent_step=None
            )
        ],
        status="completed",
    )
    with pytest.raises(LeaseLost) as info:
        storage.commit(commit)
    assert info.value.instance_id == "a"
    record = storage.get_instance("a")
    assert record is not None and record.status == "running" and record.lease_owner == "w2"
    assert record.history_len == 1 and len(storage.load_history("a")) == 1
    assert storage.get_instance("kid") is None
    assert storage.next_timer_at() is None
    assert storage.claim_outbox("r", limit=5, now=10.0, lease_seconds=5) == []


def test_consumed_inbox_items_are_deleted(storage: Storage) -> None:
    running(storage, "a")
    storage.request_cancel("a", "one", now=2.0)
    storage.request_cancel("a", "two", now=2.0)
    first, second = storage.load_inbox("a")
    storage.commit(step(storage, "a", events=[first.event], consumed_inbox=[first.id]))
    assert storage.load_inbox("a") == [second]
    assert storage.load_history("a")[-1] == first.event


def test_load_run_reads_history_and_inbox_together(storage: Storage) -> None:
    running(storage, "a")
    storage.commit(step(storage, "a", events=[b'{"e":"TimerFired","step":1}']))
    storage.request_cancel("a", "one", now=2.0)
    storage.request_cancel("a", "two", now=2.0)
    history, inbox = storage.load_run("a")
    assert history == storage.load_history("a") and len(history) == 2
    assert inbox == storage.load_inbox("a") and len(inbox) == 2
    assert storage.load_run("missing") == ([], [])


def test_waiting_with_unconsumed_inbox_stays_running(storage: Storage) -> None:
    running(storage, "a")
    storage.request_cancel("a", "stop", now=2.0)
    result = storage.commit(step(storage, "a", status="waiting", timers=[timer(1, 50.0)]))
    assert not result.released
    assert [decode.reason for decode in inbox_events(storage, "a")] == ["stop"]  # type: ignore[union-attr]
    assert [item.id for item in result.inbox] == [i.id for i in storage.load_inbox("a")]
    record = storage.get_instance("a")
    assert record is not None and record.status == "cancelling" and record.lease_owner == OWNER


def test_a_cancelled_instance_reads_cancelling_until_it_ends(storage: Storage) -> None:
    running(storage, "a")
    wait_event(storage, "a", "paid")
    create(storage, "b")
    storage.request_cancel("a", "user asked", now=3.0)
    storage.request_cancel("a", "asked again", now=4.0)  # the first request's time stays
    record = storage.get_instance("a")
    assert record is not None and record.status == "cancelling"
    assert record.cancel_requested_at == 3.0
    assert [r.instance_id for r in storage.list_instances(status="cancelling")] == ["a"]
    assert [r.instance_id for r in storage.list_instances(status="pending")] == ["b"]
    assert storage.stats()["by_status"] == {"cancelling": 1, "pending": 1}
    claimed = storage.claim(OWNER, limit=5, lease_seconds=LEASE, now=5.0, workflows=["wf"])
    statuses = {r.instance_id: r.status for r in claimed}
    assert statuses == {"a": "cancelling", "b": "running"}  # held by a worker, still cancelling
    storage.commit(step(storage, "a", status="cancelled", error={"message": "user asked"}))
    done = storage.get_instance("a")
    assert done is not None and done.status == "cancelled"
    assert storage.list_instances(status="cancelling") == []


def test_wait_for_an_available_event_goes_to_the_inbox(storage: Storage) -> None:
    running(storage, "a")
    storage.send_event(StoredEvent(type="paid", data={"n": 1}, target="a"), now=2.0)
    wait_event(storage, "a", "paid", timeout_at=100.0)
    record = storage.get_instance("a")
    assert record is not None and record.status == "running"  # delivered at once: keeps running
    (event,) = inbox_events(storage, "a")
    assert isinstance(event, EventReceived) and event.step == 1 and event.event.data == {"n": 1}
    assert storage.next_timer_at() is None  # the timeout timer of the step is gone


# -- timers -------------------------------------------------------------------------------------
def test_timers_fire_once_when_due(storage: Storage) -> None:
    running(storage, "a")
    storage.commit(step(storage, "a", timers=[timer(1, 10.0), timer(2, 20.0)], status="waiting"))
    assert storage.next_timer_at() == 10.0
    assert storage.fire_due_timers(now=5.0) == []
    assert storage.fire_due_timers(now=15.0) == ["a"]
    assert storage.fire_due_timers(now=15.0) == []
    assert inbox_events(storage, "a") == [TimerFired(step=1)]
    assert storage.get_instance("a").status == "pending"  # type: ignore[union-attr]
    assert storage.next_timer_at() == 20.0


def test_existing_timer_is_kept(storage: Storage) -> None:
    running(storage, "a")
    storage.commit(step(storage, "a", timers=[timer(1, 10.0)]))
    storage.commit(step(storage, "a", timers=[timer(1, 99.0)]))
    assert storage.next_timer_at() == 10.0


def test_concurrent_fire_due_timers_fire_each_timer_once(storage: Storage) -> None:
    for i in range(12):
        running(storage, f"i{i:02d}")
        timers = [timer(1, 5.0), timer(2, 6.0)]
        storage.commit(step(storage, f"i{i:02d}", timers=timers, status="waiting"))
    run_threads(4, lambda _: storage.fire_due_timers(now=10.0, limit=100))
    for i in range(12):
        assert sorted(e.step for e in inbox_events(storage, f"i{i:02d}")) == [1, 2]  # type: ignore[union-attr]
    assert storage.next_timer_at() is None


def test_cancel_steps_delete_timers_and_waits(storage: Storage) -> None:
    running(storage, "a")
    wait = WaitSpec(step=2, kind="event", key="paid")
    storage.commit(step(storage, "a", timers=[timer(1, 10.0)], waits=[wait]))
    storage.commit(step(storage, "a", cancel_steps=[1, 2], status="waiting"))
    assert storage.fire_due_timers(now=50.0) == []
    assert storage.send_event(StoredEvent(type="paid", target="a"), now=3.0) == (True, [])


def test_timers_of_terminal_instances_are_dropped(storage: Storage) -> None:
    running(storage, "a")
    storage.commit(step(storage, "a", timers=[timer(1, 10.0)]))
    storage.commit(step(storage, "a", status="completed"))
    assert storage.fire_due_timers(now=50.0) == []
    assert storage.load_inbox("a") == []


def test_timeout_fires_only_while_the_wait_exists(storage: Storage) -> None:
    running(storage, "a")
    wait_event(storage, "a", "paid", timeout_at=10.0)
    assert storage.send_event(StoredEvent(type="paid", target="a"), now=5.0) == (True, ["a"])
    assert storage.fire_due_timers(now=20.0) == []
    running(storage, "b")
    wait_event(storage, "b", "paid", timeout_at=10.0)
    assert storage.fire_due_timers(now=20.0) == ["b"]
    assert storage.send_event(StoredEvent(type="paid", target="b"), now=21.0) == (True, [])
    assert inbox_events(storage, "b") == [EventTimedOut(step=1, name="paid")]


def test_timeout_and_event_race_delivers_exactly_one(storage: Storage) -> None:
    ids = [f"r{i:02d}" for i in range(10)]
    for instance_id in ids:
        running(storage, instance_id)
        wait_event(storage, instance_id, "paid", timeout_at=10.0)

    def race(n: int) -> None:
        if n == 0:
            storage.fire_due_timers(now=20.0)
        else:
            for instance_id in ids:
                storage.send_event(StoredEvent(type="paid", target=instance_id), now=20.0)

    run_threads(2, race)
    for instance_id in ids:
        kinds = [type(e) for e in inbox_events(storage, instance_id)]
        assert kinds in ([EventReceived], [EventTimedOut]), (instance_id, kinds)


# -- events -------------------------------------------------------------------------------------
def test_targeted_event_sent_before_the_wait_is_kept(storage: Storage) -> None:
    running(storage, "a")
    assert storage.send_event(StoredEvent(type="paid", data=1, target="a"), now=2.0) == (True, [])
    with pytest.raises(WorkflowNotFound):
        storage.send_event(StoredEvent(type="paid", data=2, target="b", id="x"), now=2.0)
    wait_event(storage, "a", "paid")
    (event,) = inbox_events(storage, "a")
    assert isinstance(event, EventReceived) and event.event.data == 1
    running(storage, "b")  # the rejected event was not stored: the same (source, id) is new
    assert storage.send_event(StoredEvent(type="paid", data=3, target="b", id="x"), now=3.0)[0]


def test_broadcast_event_reaches_only_instances_created_before_it(storage: Storage) -> None:
    running(storage, "old")
    storage.send_event(StoredEvent(type="ping", data="early"), now=2.0)
    running(storage, "new", now=3.0)
    wait_event(storage, "new", "ping")
    assert storage.load_inbox("new") == []
    record = storage.get_instance("new")
    assert record is not None and record.status == "waiting"
    wait_event(storage, "old", "ping")
    (event,) = inbox_events(storage, "old")
    assert isinstance(event, EventReceived) and event.event.data == "early"


def test_broadcast_event_after_creation_is_delivered_once(storage: Storage) -> None:
    running(storage, "a")
    running(storage, "b")
    wait_event(storage, "a", "ping")
    stored, woken = storage.send_event(StoredEvent(type="ping", data="hi", source="s"), now=3.0)
    assert stored and woken == ["a"]
    wait_event(storage, "b", "ping")
    assert len(storage.load_inbox("b")) == 1
    storage.claim_instance("a", OWNER, lease_seconds=LEASE, now=4.0)
    wait_event(storage, "a", "ping", step_no=2)  # the same event never comes twice
    assert len(storage.load_inbox("a")) == 1
    record = storage.get_instance("a")
    assert record is not None and record.lease_owner == OWNER  # unconsumed inbox: still running


def test_event_data_carries_the_cloudevent_attributes(storage: Storage) -> None:
    running(storage, "a")
    wait_event(storage, "a", "paid")
    event = StoredEvent(
        type="paid",
        data={"x": 1},
        source="/shop",
        id="e-1",
        subject="order/1",
        time="2024-01-01T00:00:00Z",
        extensions={"tenant": "t1"},
    )
    storage.send_event(event, now=2.0)
    (received,) = inbox_events(storage, "a")
    assert isinstance(received, EventReceived) and received.name == "paid"
    got = received.event
    assert (got.type, got.id, got.source, got.subject) == ("paid", "e-1", "/shop", "order/1")
    assert (got.time, got.extensions, got.data) == (
        "2024-01-01T00:00:00Z",
        {"tenant": "t1"},
        {"x": 1},
    )


def test_match_filters_events(storage: Storage) -> None:
    running(storage, "a")
    running(storage, "b")
    wait_event(storage, "a", "paid", match={"order": 1})
    wait_event(storage, "b", "paid", match={"order": 2})
    assert storage.send_event(StoredEvent(type="paid", data={"order": 3}), now=2.0)[1] == []
    assert storage.send_event(StoredEvent(type="paid", data={"order": 2, "x": 0}), now=2.0)[1] == [
        "b"
    ]
    storage.send_event(StoredEvent(type="paid", data="not a dict"), now=2.0)
    storage.send_event(StoredEvent(type="paid", data={"order": 1}), now=2.0)
    (event,) = inbox_events(storage, "a")
    assert isinstance(event, EventReceived) and event.event.data == {"order": 1}


# (data, match, fits?): the rule of replaykit.core.event_match, on every delivery path
MATCH_CASES = [
    ({"k": None}, {"k": None}, True),
    ({}, {"k": None}, False),
    ({"k": 0}, {"k": None}, False),
    ({"k": 1.0}, {"k": 1}, True),
    ({"k": True}, {"k": 1}, False),
    ({"k": 1}, {"k": True}, False),
    ({"k": 0}, {"k": False}, False),
    ({"k": [1, {"a": True}]}, {"k": [1.0, {"a": True}]}, True),
    ({"k": [1, {"a": 1}]}, {"k": [1, {"a": True}]}, False),
]


@pytest.mark.parametrize("path", ["targeted", "broadcast", "early"])
def test_match_compares_json_values(storage: Storage, path: str) -> None:
    for n, (data, match, fits) in enumerate(MATCH_CASES):
        name = f"m{n}"
        running(storage, name)
        if path == "early":
            storage.send_event(StoredEvent(type="paid", data=data, target=name), now=2.0)
            wait_event(storage, name, "paid", match=match)
        else:
            wait_event(storage, name, "paid", match=match)
            target = name if path == "targeted" else None
            storage.send_event(StoredEvent(type="paid", data=data, target=target), now=2.0)
        got = [e.event.data for e in inbox_events(storage, name)]  # type: ignore[union-attr]
        assert got == ([data] if fits else []), (path, data, match)


def test_wait_takes_the_oldest_matching_event(storage: Storage) -> None:
    running(storage, "a")
    for n in (1, 2, 3):
        storage.send_event(StoredEvent(type="paid", data={"k": n % 2, "n": n}, target="a"), now=2)
    wait_event(storage, "a", "paid", match={"k": 1})
    (event,) = inbox_events(storage, "a")
    assert isinstance(event, EventReceived) and event.event.data == {"k": 1, "n": 1}


def test_events_are_deduplicated_on_source_and_id(storage: Storage) -> None:
    running(storage, "a")
    wait_event(storage, "a", "paid")
    assert storage.send_event(StoredEvent(type="paid", source="s", id="1"), now=2.0)[0]
    assert storage.send_event(StoredEvent(type="paid", source="s", id="1"), now=2.0) == (False, [])
    assert storage.send_event(StoredEvent(type="paid", source="t", id="1"), now=2.0)[0]
    assert storage.send_event(StoredEvent(type="paid"), now=2.0)[0]
    assert storage.send_event(StoredEvent(type="paid"), now=2.0)[0]  # no id: never a duplicate
    assert len(storage.load_inbox("a")) == 1


def test_event_goes_to_the_lowest_matching_step(storage: Storage) -> None:
    running(storage, "a")
    waits = [WaitSpec(step=s, kind="event", key="paid") for s in (4, 2, 3)]
    storage.commit(step(storage, "a", waits=waits, status="waiting"))
    storage.send_event(StoredEvent(type="paid", data=1), now=2.0)
    storage.send_event(StoredEvent(type="paid", data=2), now=2.0)
    steps = [(e.step, e.event.data) for e in inbox_events(storage, "a")]  # type: ignore[union-attr]
    assert steps == [(2, 1), (3, 2)]


def test_targeted_event_takes_the_lowest_matching_wait_and_its_timeout(storage: Storage) -> None:
    running(storage, "a")
    waits = [
        WaitSpec(step=2, kind="event", key="paid", match={"order": 9}),
        WaitSpec(step=3, kind="event", key="paid", match={"order": 1}),
        WaitSpec(step=4, kind="event", key="paid"),
    ]
    timeout = timer(3, 50.0)
    storage.commit(step(storage, "a", waits=waits, timers=[timeout], status="waiting"))
    assert storage.send_event(
        StoredEvent(type="paid", data={"order": 1, "x": [1]}, target="a", source="s", id="e1"),
        now=2.0,
    ) == (True, ["a"])
    assert storage.send_event(
        StoredEvent(type="paid", data={"order": 1}, target="a", source="s", id="e1"), now=2.0
    ) == (False, [])
    assert storage.send_event(StoredEvent(type="paid", data="plain", target="a"), now=2.0)[1] == [
        "a"
    ]
    delivered = [(e.step, e.event.data) for e in inbox_events(storage, "a")]  # type: ignore[union-attr]
    assert delivered == [(3, {"order": 1, "x": [1]}), (4, "plain")]
    assert storage.next_timer_at() is None  # the matched wait's timeout went with it
    assert storage.get_instance("a").status == "pending"  # type: ignore[union-attr]


# -- channels -----------------------------------------------------------------------------------
def subscribe(storage: Storage, instance_id: str, channel: str, mode: str = "broadcast") -> None:
    sub = SubscriptionSpec(channel=channel, mode=mode)  # type: ignore[arg-type]
    storage.commit(step(storage, instance_id, subscriptions=[sub]))


def test_broadcast_reaches_every_subscriber(storage: Storage) -> None:
    for name in ("a", "b", "c"):
        running(storage, name)
        subscribe(storage, name, "news")
    storage.publish(PublishSpec(channel="news", data="before"), now=2.0)
    wait_message(storage, "a", "news")
    wait_message(storage, "b", "news")
    storage.publish(PublishSpec(channel="news", data="after", metadata={"k": "v"}), now=3.0)
    for name in ("a", "b"):
        received = inbox_events(storage, name)
        assert [e.message.data for e in received] == ["before"]  # type: ignore[union-attr]
    storage.claim_instance("a", OWNER, lease_seconds=LEASE, now=4.0)
    wait_message(storage, "a", "news", step_no=2)
    last = inbox_events(storage, "a")[-1]
    assert isinstance(last, MessageReceived) and last.step == 2
    assert (last.message.data, last.message.metadata, last.name) == ("after", {"k": "v"}, "news")
    wait_message(storage, "c", "news")
    assert len(storage.load_inbox("c")) == 1  # before, and after are waiting for the next wait


def test_broadcast_subscribers_get_only_later_messages(storage: Storage) -> None:
    storage.publish(PublishSpec(channel="news", data="old"), now=1.0)
    running(storage, "a")
    subscribe(storage, "a", "news")
    wait_message(storage, "a", "news")
    assert storage.load_inbox("a") == []
    assert storage.publish(PublishSpec(channel="news", data="new"), now=3.0) == ["a"]
    (event,) = inbox_events(storage, "a")
    assert isinstance(event, MessageReceived) and event.message.data == "new"


def test_waiting_broadcast_subscribers_are_all_woken(storage: Storage) -> None:
    for name in ("a", "b"):
        running(storage, name)
        subscribe(storage, name, "news")
        wait_message(storage, name, "news")
    assert sorted(storage.publish(PublishSpec(channel="news", data=1), now=3.0)) == ["a", "b"]


def test_competing_message_goes_to_exactly_one(storage: Storage) -> None:
    for name in ("a", "b", "c"):
        running(storage, name)
        subscribe(storage, name, "jobs", "competing")
    wait_message(storage, "b", "jobs", now=2.0)
    wait_message(storage, "a", "jobs", now=2.5)
    assert storage.publish(PublishSpec(channel="jobs", data=1), now=3.0) == ["b"]
    storage.publish(PublishSpec(channel="jobs", data=2), now=3.0)
    storage.publish(PublishSpec(channel="jobs", data=3), now=3.0)
    wait_message(storage, "c", "jobs")
    got = {n: [e.message.data for e in inbox_events(storage, n)] for n in "abc"}  # type: ignore[union-attr]
    assert got == {"a": [2], "b": [1], "c": [3]}


def test_competing_queue_keeps_messages_published_before_subscribing(storage: Storage) -> None:
    storage.publish(PublishSpec(channel="jobs", data="queued"), now=1.0)
    running(storage, "a")
    subscribe(storage, "a", "jobs", "competing")
    wait_message(storage, "a", "jobs")
    (event,) = inbox_events(storage, "a")
    assert isinstance(event, MessageReceived) and event.message.data == "queued"


def test_many_concurrent_competing_receivers_share_the_messages(storage: Storage) -> None:
    receivers = [f"r{i}" for i in range(6)]
    for name in receivers:
        running(storage, name)
        subscribe(storage, name, "jobs", "competing")
    for n in range(30):
        storage.publish(PublishSpec(channel="jobs", data=n), now=2.0)

    def receive(i: int) -> None:
        name = receivers[i]
        for k in range(1, 6):
            storage.claim_instance(name, OWNER, lease_seconds=LEASE, now=3.0)
            storage.commit(
                step(storage, name, waits=[WaitSpec(step=k, kind="message", key="jobs")])
            )

    run_threads(len(receivers), receive)
    got = [e.message.data for n in receivers for e in inbox_events(storage, n)]  # type: ignore[union-attr]
    assert sorted(got) == list(range(30))


def test_direct_message_goes_to_its_target_only(storage: Storage) -> None:
    running(storage, "a")
    running(storage, "b")
    subscribe(storage, "b", "inbox")
    wait_message(storage, "b", "inbox")
    storage.publish(PublishSpec(channel="inbox", data="early", target="a", sender="x"), now=2.0)
    assert storage.publish(PublishSpec(channel="inbox", data="hi", target="b"), now=2.0) == ["b"]
    wait_message(storage, "a", "inbox")
    (event,) = inbox_events(storage, "a")
    assert isinstance(event, MessageReceived)
    assert (event.message.data, event.message.sender) == ("early", "x")
    assert [e.message.data for e in inbox_events(storage, "b")] == ["hi"]  # type: ignore[union-attr]


def test_unsubscribe_stops_delivery(storage: Storage) -> None:
    running(storage, "a")
    subscribe(storage, "a", "news")
    unsubscribe = SubscriptionSpec(channel="news", subscribe=False)
    storage.commit(step(storage, "a", subscriptions=[unsubscribe]))
    wait_message(storage, "a", "news")
    assert storage.publish(PublishSpec(channel="news", data=1), now=3.0) == []


def test_publish_inside_a_commit_is_delivered(storage: Storage) -> None:
    running(storage, "sub")
    subscribe(storage, "sub", "news")
    wait_message(storage, "sub", "news")
    running(storage, "pub")
    storage.commit(step(storage, "pub", publishes=[PublishSpec(channel="news", data="x")]))
    assert len(storage.load_inbox("sub")) == 1
    assert storage.get_instance("sub").status == "pending"  # type: ignore[union-attr]


# -- children, recur, cancel --------------------------------------------------------------------
def test_children_are_created_and_wake_their_parent(storage: Storage) -> None:
    running(storage, "parent")
    child = ChildSpec(
        instance_id="kid",
        workflow="sub",
        input={"n": 1},
        started_event=encode_event(WorkflowStarted(workflow="sub", instance_id="kid")),
        parent_step=3,
    )
    storage.commit(step(storage, "parent", children=[child, child], status="waiting"))
    kid = storage.get_instance("kid")
    assert kid is not None
    assert (kid.status, kid.parent_id, kid.parent_step, kid.input) == (
        "pending",
        "parent",
        3,
        {"n": 1},
    )
    assert storage.claim_instance("kid", "w2", lease_seconds=LEASE, now=3.0)
    done = encode_event(ChildCompleted(step=3, child_id="kid", result=7))
    storage.commit(
        step(storage, "kid", owner="w2", status="completed", output=7, parent_event=done)
    )
    assert storage.load_inbox("parent")[0].event == done
    assert storage.get_instance("parent").status == "pending"  # type: ignore[union-attr]


def test_registered_steps_are_those_of_timers_waits_and_running_waited_children(
    storage: Storage,
) -> None:
    running(storage, "parent")
    assert storage.registered_steps("parent") == []

    def child(instance_id: str, parent_step: int | None) -> ChildSpec:
        event = WorkflowStarted(workflow="sub", instance_id=instance_id)
        return ChildSpec(
            instance_id=instance_id,
            workflow="sub",
            input=None,
            started_event=encode_event(event),
            parent_step=parent_step,
        )

    storage.commit(
        step(
            storage,
            "parent",
            timers=[timer(2, 50.0), timer(4, 60.0)],
            waits=[WaitSpec(step=4, kind="event", key="go")],
            children=[child("kid", 6), child("free", None), child("done", 7)],
        )
    )
    assert storage.claim_instance("done", "w2", lease_seconds=LEASE, now=3.0)
    storage.commit(step(storage, "done", owner="w2", status="completed"))
    assert storage.registered_steps("parent") == [2, 4, 6]
    assert storage.registered_steps("kid") == []


def test_recur_archives_the_history_and_starts_the_next_run(storage: Storage) -> None:
    running(storage, "a", input={"n": 1})
    storage.commit(step(storage, "a", events=[encode_event(TimerFired(step=1))]))
    storage.commit(step(storage, "a", timers=[timer(2, 9.0)]))
    storage.request_cancel("a", "later", now=2.0)
    storage.send_event(StoredEvent(type="x", target="a"), now=2.0)
    wait_event(storage, "a", "x", step_no=5)  # delivered at once into the inbox
    old = storage.load_history("a")
    restart = encode_event(WorkflowStarted(workflow="wf", instance_id="a", run=2))
    result = storage.commit(
        step(storage, "a", recur=True, recur_input={"n": 2}, recur_started=restart)
    )
    assert result.released
    record = storage.get_instance("a")
    assert record is not None
    assert (record.run, record.input, record.continued_from) == (2, {"n": 2}, "a@1")
    # the cancel request stays for the next run, which reads "cancelling" until it ends
    assert (record.status, record.lease_owner, record.history_len) == ("cancelling", None, 1)
    assert storage.load_history("a") == [restart]
    assert storage.load_archived_history("a", 1) == old
    assert storage.next_timer_at() is None
    assert [type(e) for e in inbox_events(storage, "a")] == [CancelRequested]


# -- code versions (issue 13) --------------------------------------------------------------------
def test_an_instance_keeps_the_code_version_it_was_created_with(storage: Storage) -> None:
    create(storage, "v", version="2")
    create(storage, "none")
    assert storage.get_instance("v").version == "2"  # type: ignore[union-attr]
    assert storage.get_instance("none").version is None  # type: ignore[union-attr]
    assert [r.version for r in storage.list_instances()] == ["2", None]  # ids "v", "none"
    claimed = storage.claim_instance("v", OWNER, lease_seconds=LEASE, now=2.0)
    assert claimed is not None and claimed.version == "2"


def test_a_child_gets_its_own_code_version_and_recur_sets_the_next_runs(
    storage: Storage,
) -> None:
    running(storage, "parent", version="p1")
    started = encode_event(WorkflowStarted(workflow="sub", instance_id="kid"))
    kid = ChildSpec(
        instance_id="kid",
        workflow="sub",
        input=None,
        started_event=started,
        parent_step=1,
        version="k7",
    )
    storage.commit(step(storage, "parent", children=[kid]))
    assert storage.get_instance("kid").version == "k7"  # type: ignore[union-attr]
    restart = encode_event(WorkflowStarted(workflow="wf", instance_id="parent", run=2))
    storage.commit(step(storage, "parent", recur=True, recur_started=restart, recur_version="p2"))
    assert storage.get_instance("parent").version == "p2"  # type: ignore[union-attr]
    assert storage.claim_instance("parent", OWNER, lease_seconds=LEASE, now=3.0)
    restart = encode_event(WorkflowStarted(workflow="wf", instance_id="parent", run=3))
    storage.commit(step(storage, "parent", recur=True, recur_started=restart))  # no version
    assert storage.get_instance("parent").version == "p2"  # type: ignore[union-attr]


# -- forks (issue 13) ----------------------------------------------------------------------------
def _fork_record(new_id: str, source: str = "a", **fields: Any) -> InstanceRecord:
    return InstanceRecord(
        instance_id=new_id,
        workflow="wf",
        status="pending",
        forked_from=source,
        forked_step=2,
        created_at=5.0,
        updated_at=5.0,
        **fields,
    )


def test_a_fork_copies_a_prefix_of_the_source_history(storage: Storage) -> None:
    running(storage, "a", input={"n": 1})
    done = [encode_event(TimerFired(step=i)) for i in (1, 2, 3)]
    storage.commit(step(storage, "a", events=done, status="failed", error={"type": "X"}))
    forked_started = encode_event(WorkflowStarted(workflow="wf", instance_id="b"))
    record = _fork_record("b", input={"n": 1}, version="v1")
    stored = storage.fork_instance(record, forked_started, source_run=1, events=3)
    assert (stored.status, stored.history_len, stored.forked_from, stored.forked_step) == (
        "pending",
        3,
        "a",
        2,
    )
    assert (stored.input, stored.version, stored.parent_id) == ({"n": 1}, "v1", None)
    assert storage.load_history("b") == [forked_started, *done[:2]]
    assert storage.get_instance("a").status == "failed"  # type: ignore[union-attr]
    assert len(storage.load_history("a")) == 4
    claimed = storage.claim("w", limit=5, lease_seconds=LEASE, now=6.0)
    assert [r.instance_id for r in claimed] == ["b"]  # runnable at once
    only_start = storage.fork_instance(_fork_record("c"), forked_started, source_run=1, events=1)
    assert only_start.history_len == 1 and storage.load_history("c") == [forked_started]


def test_a_fork_that_cannot_be_made_stores_nothing(storage: Storage) -> None:
    running(storage, "a")
    storage.commit(step(storage, "a", events=[encode_event(TimerFired(step=1))]))
    started = encode_event(WorkflowStarted(workflow="wf", instance_id="b"))
    with pytest.raises(WorkflowNotFound):
        storage.fork_instance(_fork_record("b", "missing"), started, source_run=1, events=1)
    with pytest.raises(InvalidInput, match="moved on to run 1"):  # asked of run 2
        storage.fork_instance(_fork_record("b"), started, source_run=2, events=2)
    with pytest.raises(InvalidInput, match="has 2 events, not the 3"):
        storage.fork_instance(_fork_record("b"), started, source_run=1, events=3)
    assert storage.get_instance("b") is None and storage.load_history("b") == []
    create(storage, "taken")
    with pytest.raises(InvalidInput, match="exists"):
        storage.fork_instance(_fork_record("taken"), started, source_run=1, events=2)
    assert storage.load_history("taken") == [encode_event_of("taken")]


def encode_event_of(instance_id: str) -> bytes:
    return encode_event(WorkflowStarted(workflow="wf", instance_id=instance_id))


def test_cancel(storage: Storage) -> None:
    with pytest.raises(WorkflowNotFound):
        storage.request_cancel("missing", "why", now=1.0)
    running(storage, "a")
    wait_event(storage, "a", "paid")
    record = storage.request_cancel("a", "user asked", now=3.0)
    assert record.status == "cancelling" and record.cancel_requested_at == 3.0
    assert inbox_events(storage, "a") == [CancelRequested(reason="user asked", at=3.0)]
    running(storage, "done")
    storage.commit(step(storage, "done", status="completed", output=1))
    unchanged = storage.request_cancel("done", "late", now=3.0)
    assert unchanged.status == "completed" and storage.load_inbox("done") == []


def test_a_blocked_instance_is_not_claimed_or_woken_until_retried(storage: Storage) -> None:
    running(storage, "a")
    error = {"type": "NonDeterminismError", "message": "step 1: ...", "step": 1}
    held = storage.get_instance("a")
    assert held is not None
    assert storage.block("a", "someone-else", error, now=2.0, token=held.lease_token) is False
    assert storage.block("a", OWNER, error, now=2.0, token="an-older-claim") is False
    assert storage.block("a", OWNER, error, now=2.0, token=held.lease_token) is True
    record = storage.get_instance("a")
    assert record is not None and (record.status, record.lease_owner) == ("blocked", None)
    assert record.error == error
    storage.send_event(StoredEvent(type="go", target="a"), now=3.0)
    assert storage.claim(OWNER, limit=5, lease_seconds=LEASE, now=4.0) == []
    assert [r.instance_id for r in storage.list_instances(status="blocked")] == ["a"]
    assert storage.retry_blocked(now=5.0, workflows=["other"]) == 0
    assert storage.retry_blocked(now=5.0, workflows=["wf"]) == 1
    again = storage.get_instance("a")
    assert again is not None and (again.status, again.error) == ("pending", None)
    [claimed] = storage.claim(OWNER, limit=5, lease_seconds=LEASE, now=6.0)
    assert claimed.instance_id == "a"


def test_terminal_status_drops_waits_timers_and_subscriptions(storage: Storage) -> None:
    running(storage, "a")
    subscribe(storage, "a", "news")
    wait = WaitSpec(step=2, kind="event", key="paid")
    storage.commit(step(storage, "a", waits=[wait], timers=[timer(1, 5.0)]))
    storage.commit(step(storage, "a", status="cancelled", error={"type": "Cancelled"}))
    assert storage.next_timer_at() is None
    assert storage.send_event(StoredEvent(type="paid"), now=3.0) == (True, [])
    assert storage.publish(PublishSpec(channel="news"), now=3.0) == []


# -- outbox -------------------------------------------------------------------------------------
def outbox_rows(storage: Storage, n: int) -> None:
    running(storage, "a")
    specs = [OutboxSpec(event={"type": "t", "n": i}, destination="http://x") for i in range(n)]
    storage.commit(step(storage, "a", outbox=specs))


def test_outbox_claim_and_finish(storage: Storage) -> None:
    outbox_rows(storage, 2)
    claimed = storage.claim_outbox("relay", limit=10, now=5.0, lease_seconds=10.0)
    assert [(r.event["n"], r.attempts, r.instance_id) for r in claimed] == [
        (0, 1, "a"),
        (1, 1, "a"),
    ]
    assert claimed[0].destination == "http://x"
    assert storage.claim_outbox("relay2", limit=10, now=6.0, lease_seconds=10.0) == []
    storage.finish_outbox(claimed[0].id, delivered=True, error=None, next_attempt_at=None)
    storage.finish_outbox(claimed[1].id, delivered=False, error="503", next_attempt_at=30.0)
    assert storage.claim_outbox("relay", limit=10, now=20.0, lease_seconds=10.0) == []
    (retry,) = storage.claim_outbox("relay", limit=10, now=30.0, lease_seconds=10.0)
    assert (retry.id, retry.attempts, retry.last_error) == (claimed[1].id, 2, "503")
    storage.finish_outbox(retry.id, delivered=False, error="gone", next_attempt_at=None)
    assert storage.claim_outbox("relay", limit=10, now=1e9, lease_seconds=10.0) == []
    assert storage.stats()["outbox_pending"] == 0


def test_expired_outbox_claim_is_taken_over(storage: Storage) -> None:
    outbox_rows(storage, 1)
    assert storage.claim_outbox("r1", limit=1, now=5.0, lease_seconds=10.0)
    (again,) = storage.claim_outbox("r2", limit=1, now=16.0, lease_seconds=10.0)
    assert again.attempts == 2


def test_relays_never_claim_the_same_outbox_row(storage: Storage) -> None:
    outbox_rows(storage, 30)
    batches = run_threads(
        4, lambda n: storage.claim_outbox(f"r{n}", limit=30, now=5.0, lease_seconds=10.0)
    )
    ids = [r.id for batch in batches for r in batch]
    assert len(ids) == len(set(ids)) == 30


# -- migrations, listing, stats -----------------------------------------------------------------
def test_migrations_are_idempotent(storage: Storage) -> None:
    assert storage.migrate() == []
    assert storage.migrate() == []


def test_concurrent_migrations_apply_once(open_new: Callable[..., Storage]) -> None:
    storages = [open_new(auto_migrate=False) for _ in range(4)]
    shipped = [m.version for m in load_migrations(storages[0].migrations_package)]  # type: ignore[attr-defined]
    assert shipped[:2] == ["0001", "0002"]
    applied = run_threads(4, lambda i: storages[i].migrate())
    assert Counter(v for versions in applied for v in versions) == dict.fromkeys(shipped, 1)
    assert storages[1].applied_migrations() == shipped
    create(storages[0], "a")
    assert storages[3].get_instance("a") is not None


def test_list_instances_filters_and_pages(storage: Storage) -> None:
    for i in range(5):
        create(storage, f"a{i}", now=float(i), workflow="x" if i % 2 else "y")
    names = [r.instance_id for r in storage.list_instances()]
    assert names == ["a4", "a3", "a2", "a1", "a0"]
    assert [r.instance_id for r in storage.list_instances(workflow="x")] == ["a3", "a1"]
    assert [r.instance_id for r in storage.list_instances(limit=2, offset=1)] == ["a3", "a2"]
    assert [r.instance_id for r in storage.list_instances(created_before=2.0)] == ["a1", "a0"]
    assert [r.instance_id for r in storage.list_instances(created_after=2.0)] == ["a4", "a3"]
    storage.claim_instance("a2", OWNER, lease_seconds=LEASE, now=9.0)
    assert [r.instance_id for r in storage.list_instances(status="running")] == ["a2"]


def test_stats(storage: Storage) -> None:
    assert storage.stats() == {
        "by_status": {},
        "oldest_waiting": None,
        "lease_owners": {},
        "timers": 0,
        "outbox_pending": 0,
        "queues": {},
    }
    running(storage, "a", now=1.0)
    running(storage, "b", now=2.0)
    create(storage, "c", now=3.0)
    wait_event(storage, "a", "x", timeout_at=50.0)
    stats = storage.stats()
    assert stats["by_status"] == {"waiting": 1, "running": 1, "pending": 1}
    assert stats["oldest_waiting"] == 1.0
    assert stats["lease_owners"] == {OWNER: 1}
    assert stats["timers"] == 1


def test_database_errors_are_storage_errors(storage: Storage) -> None:
    running(storage, "a")
    commit = step(storage, "a", events=[b"{}"])
    commit.history_len = 0  # position 0 is taken: the database refuses the append
    with pytest.raises(StorageError) as info:
        storage.commit(commit)
    assert info.value.__cause__ is not None


def test_a_delivered_event_reads_back_exactly(storage: Storage) -> None:
    """The inbox event of a targeted and of a broadcast delivery is the EventReceived the
    workflow would have been given in memory (PostgreSQL builds the targeted one in SQL)."""
    data = {
        "text": 'quote " back\\slash \t tab \u00e9 \U0001f600 </script>',
        "big": 2**62,
        "small": 0.1,
        "tiny": -1.5e-300,
        "nested": [None, True, {"k": []}],
    }
    now = 1732600000.1234567
    for target, instance_id in (("a", "a"), (None, "b")):
        running(storage, instance_id)
        wait_event(storage, instance_id, "paid", step_no=7)
        sent = StoredEvent(
            type="paid",
            data=data,
            source="/shop",
            id=f"e-{instance_id}",
            subject="order-1",
            time="2024-01-01T00:00:00Z",
            extensions={"traceparent": "00-x"},
            target=target,
        )
        assert storage.send_event(sent, now=now) == (True, [instance_id])
        expected = EventReceived(
            step=7,
            name="paid",
            at=now,
            event=EventData(
                type="paid",
                data=data,
                id=f"e-{instance_id}",
                source="/shop",
                subject="order-1",
                time="2024-01-01T00:00:00Z",
                extensions={"traceparent": "00-x"},
            ),
        )
        assert inbox_events(storage, instance_id) == [expected]

"""PostgreSQL-only behaviour: NOTIFY delivered at commit, never before; the session."""

from __future__ import annotations

import gc
import threading
from typing import Any

import psycopg
import pytest

from replaykit.core.history import EventReceived, decode_event
from replaykit.storage import ChildSpec, Storage, StoredEvent
from storage_adapters import open_storage

from .helpers import lease_ends, running, step, wait_event

pytestmark = pytest.mark.postgres


def drain(storage: Storage) -> None:
    """Start listening and forget notifications of the setup."""
    while storage.wait_for_wakeup(0.05):
        pass


def test_send_event_notifies_after_commit(pg_storage: Storage) -> None:
    assert pg_storage.notifies is True
    running(pg_storage, "a")
    wait_event(pg_storage, "a", "paid")
    drain(pg_storage)
    assert pg_storage.wait_for_wakeup(0.05) is False
    assert pg_storage.send_event(StoredEvent(type="paid", target="a"), now=3.0) == (True, ["a"])
    assert pg_storage.wait_for_wakeup(2.0) is True


def test_no_notification_while_the_transaction_is_open(
    pg_storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step (a child: runnable work, so a NOTIFY) is applied in the activity's open
    transaction; a listener hears nothing until its COMMIT."""
    running(pg_storage, "a")
    child = ChildSpec(
        instance_id="kid", workflow="wf", input=None, started_event=b"{}", parent_step=None
    )
    commit = step(pg_storage, "a", children=[child])
    drain(pg_storage)
    seen: list[bool] = []
    real_open = pg_storage._open  # type: ignore[attr-defined]

    class Listened:
        """The adapter's begun transaction, listening just before its COMMIT."""

        def __init__(self, begun: Any) -> None:
            self.begun, self.conn = begun, begun.conn

        def commit(self) -> None:  # the step is written, not yet committed
            waiter = threading.Thread(target=lambda: seen.append(pg_storage.wait_for_wakeup(0.3)))
            waiter.start()
            waiter.join()
            self.begun.commit()

        def rollback(self) -> None:
            self.begun.rollback()

    monkeypatch.setattr(pg_storage, "_open", lambda **options: Listened(real_open(**options)))
    with pg_storage.transaction() as tx:
        assert tx.session is not None  # begin: the step is applied in this transaction
        tx.commit(commit)
    assert seen == [False]
    assert pg_storage.wait_for_wakeup(2.0) is True


def test_session_is_the_connection_inside_the_transaction(pg_storage: Storage) -> None:
    running(pg_storage, "a")
    commit = step(pg_storage, "a", events=[b"{}"])
    with pytest.raises(RuntimeError), pg_storage.transaction() as tx:
        assert isinstance(tx.session, psycopg.Connection)
        tx.session.execute("CREATE TABLE orders (id int)")
        tx.session.execute("INSERT INTO orders VALUES (%s)", (1,))
        raise RuntimeError("boom")
    with pg_storage.transaction() as tx:
        tx.session.execute("CREATE TABLE orders (id int)")
        tx.session.execute("INSERT INTO orders VALUES (%s)", (2,))
        tx.commit(commit)
    with pg_storage.transaction() as tx:
        assert tx.session.execute("SELECT id FROM orders").fetchall() == [(2,)]
    assert len(pg_storage.load_history("a")) == 2


def test_a_woken_instance_can_be_handed_straight_to_a_local_worker(pg_storage: Storage) -> None:
    running(pg_storage, "a")
    wait_event(pg_storage, "a", "paid")
    drain(pg_storage)
    claim = pg_storage.send_event_and_claim  # type: ignore[attr-defined]
    stored, handed = claim(
        StoredEvent(type="paid", data=1, target="a"),
        now=3.0,
        owner="w2",
        lease_seconds=30,
        workflows=["wf"],
    )
    assert stored and handed is not None
    record = handed.record
    assert (record.status, record.lease_owner) == ("running", "w2") and lease_ends(record, 33.0)
    assert record == pg_storage.get_instance("a")  # the record handed over is the stored one
    assert pg_storage.wait_for_wakeup(0.2) is False  # handed over: nobody else is told
    # what the worker needs to resume comes with it, read under the new lease
    assert (handed.history, handed.inbox) == pg_storage.load_run("a")
    assert len(handed.inbox) == 1
    # not waiting any more: the event is kept for it, nothing is claimed or woken
    stored, handed = claim(
        StoredEvent(type="paid", data=2, target="a"),
        now=4.0,
        owner="w3",
        lease_seconds=30,
        workflows=["wf"],
    )
    assert stored and handed is None
    current = pg_storage.get_instance("a")
    assert current is not None and current.lease_owner == "w2"


def test_an_instance_whose_workflow_the_caller_does_not_run_is_woken_not_handed_over(
    pg_storage: Storage,
) -> None:
    running(pg_storage, "a")
    wait_event(pg_storage, "a", "paid")
    drain(pg_storage)
    claim = pg_storage.send_event_and_claim  # type: ignore[attr-defined]
    stored, handed = claim(
        StoredEvent(type="paid", data=1, target="a"),
        now=3.0,
        owner="w2",
        lease_seconds=30,
        workflows=["some_other_workflow"],
    )
    assert stored and handed is None
    record = pg_storage.get_instance("a")
    assert record is not None and (record.status, record.lease_owner) == ("pending", None)
    assert pg_storage.wait_for_wakeup(2.0) is True  # a worker that runs it is told instead


def test_a_targeted_event_keeps_its_exact_time_whatever_the_float_output(
    pg_schema_dsn: str,
) -> None:
    """The inbox event is built in SQL; its ``at`` must not lose digits to a server or session
    that prints floats with 15 significant digits (extra_float_digits = 0)."""
    storage = open_storage(f"{pg_schema_dsn}%20-cextra_float_digits%3D0")
    try:
        running(storage, "a")
        wait_event(storage, "a", "paid")
        now = 1732600000.1234567
        assert storage.send_event(StoredEvent(type="paid", data=0.1, target="a"), now=now)[0]
        (item,) = storage.load_inbox("a")
        event = decode_event(item.event)
        assert isinstance(event, EventReceived) and event.at == now and event.event.data == 0.1
    finally:
        storage.close()


def test_one_caller_at_a_time_keeps_using_the_connection_returned_last(
    pg_storage: Storage, pg_schema_dsn: str
) -> None:
    """After a burst opened several connections, calls made one at a time all go to the one
    returned last, whose prepared statements and PL/pgSQL plans are warm, not to each in turn
    (a cold one costs milliseconds: the event wake-up of benchmarks/README.md)."""
    running(pg_storage, "a")
    together = threading.Barrier(3)
    pids: list[int] = []

    def hold(tx: Any) -> None:  # three connections at once
        pids.append(tx.rows("SELECT pg_backend_pid() AS pid, 'burst'")[0]["pid"])
        together.wait(10)

    read = pg_storage._read  # type: ignore[attr-defined]
    burst = [threading.Thread(target=read, args=(hold,)) for _ in range(3)]
    for thread in burst:
        thread.start()
    for thread in burst:
        thread.join(10)
    for _ in range(6):
        assert pg_storage.get_instance("a") is not None
    with psycopg.connect(pg_schema_dsn) as admin:
        rows = admin.execute(
            "SELECT pid, query FROM pg_stat_activity WHERE pid = ANY(%s)", [pids]
        ).fetchall()
    still_burst = sorted("'burst'" in query for _, query in rows)
    assert still_burst == [False, True, True]  # only one took the six calls


def test_a_storage_dropped_without_close_leaves_no_connection_open(pg_schema_dsn: str) -> None:
    """As when an App is used again after stop(): the storage it reopened is never closed. Its
    pooled connections are closed when it is collected (a psycopg connection collected while
    open is a ResourceWarning, an error in this suite)."""
    storage = open_storage(pg_schema_dsn)
    assert storage.get_instance("nobody") is None
    del storage
    gc.collect()


def test_the_claim_lease_owner_and_parent_indexes_hold_only_the_rows_their_queries_look_for(
    pg_storage: Storage, pg_schema_dsn: str
) -> None:
    """Migration 0021: a running instance's step moves no claim-index entry, and the claim
    query still finds pending instances and expired leases through the partial indexes."""
    with psycopg.connect(pg_schema_dsn) as conn:
        schema = conn.execute("SELECT current_schema()").fetchone()
        rows = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s",
            (schema[0] if schema else "",),
        ).fetchall()
        defs = dict(rows)
        assert "WHERE (status = 'pending'::text)" in defs["rk_instances_claim"]
        assert "WHERE (status = 'running'::text)" in defs["rk_instances_lease"]
        assert "WHERE (lease_owner IS NOT NULL)" in defs["rk_instances_owner"]
        assert "WHERE (parent_id IS NOT NULL)" in defs["rk_instances_parent"]
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(
            str(row[0])
            for row in conn.execute(
                "EXPLAIN SELECT instance_id FROM rk_instances WHERE (status = 'pending' OR "
                "(status = 'running' AND lease_expires_at < 5)) ORDER BY updated_at LIMIT 5"
            )
        )
        assert "rk_instances_claim" in plan and "rk_instances_lease" in plan

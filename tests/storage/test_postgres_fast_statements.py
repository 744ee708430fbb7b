"""PostgreSQL's fast-path statements: one autocommit statement on a pooled connection, prepared
by name per connection and run by libpq directly (storage_adapters/postgres/prepared.py), with
psycopg's errors and the adapter's retries."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
import pytest

from replaykit.core.errors import StorageError
from replaykit.core.history import ActivityCompleted, decode_event, encode_event
from replaykit.storage import InstanceRecord, Storage
from storage_adapters.postgres import prepared
from storage_adapters.postgres.prepared import Statement

from .helpers import OWNER, running, started, step

pytestmark = pytest.mark.postgres


def done(step_no: int) -> bytes:
    return encode_event(ActivityCompleted(step=step_no, result=step_no))


def pooled(storage: Storage) -> Any:
    """The connection the storage's next call gets (the pool is newest first)."""
    pool = storage._pool  # type: ignore[attr-defined]
    conn = pool.get()
    pool.put(conn)
    return conn


def test_a_database_error_is_a_storage_error_and_the_connection_stays_usable(
    pg_storage: Storage,
) -> None:
    running(pg_storage, "a")
    conn = pooled(pg_storage)
    commit = step(pg_storage, "a", events=[done(1)])
    bad = msgspec.structs.replace(commit, history_len=2**40)
    with pytest.raises(StorageError, match="out of range"):
        pg_storage.commit(bad)
    assert pooled(pg_storage) is conn  # kept: the error ended the statement, not the session
    pg_storage.commit(commit)
    assert len(pg_storage.load_run("a")[0]) == 2


def test_a_step_takes_its_connection_straight_from_the_pool(
    pg_storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No transaction wrapper or retry loop (``_run``) around a fast statement that succeeds."""
    running(pg_storage, "a")
    commit = step(pg_storage, "a", events=[done(1)])
    monkeypatch.setattr(pg_storage, "_run", None)
    pg_storage.commit(commit)
    monkeypatch.undo()
    assert len(pg_storage.load_run("a")[0]) == 2


def test_a_connection_the_server_dropped_is_replaced_and_the_step_retried(
    pg_storage: Storage, pg_schema_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    running(pg_storage, "a")
    commit = step(pg_storage, "a", events=[done(1)])
    conn = pooled(pg_storage)
    with psycopg.connect(pg_schema_dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [conn.info.backend_pid])
    retries: list[bool] = []
    run = pg_storage._run  # type: ignore[attr-defined]
    monkeypatch.setattr(pg_storage, "_run", lambda *a, **k: retries.append(True) or run(*a, **k))
    pg_storage.commit(commit)
    assert conn.broken and retries == [True]  # the retry loop took over after the failure
    assert pooled(pg_storage) is not conn
    assert len(pg_storage.load_run("a")[0]) == 2


def test_named_placeholders_become_numbered_ones_in_order_of_first_use() -> None:
    statement = Statement("SELECT %(a)s::int + %(b)s, %(a)s, %(c)s", binary=("b",))
    assert statement.sql == b"SELECT $1::int + $2, $1, $3"
    assert statement.order == ("a", "b", "c")
    assert statement.formats == [0, 1, 0]
    assert statement.name.startswith(b"rk_fast_")


def test_a_binary_parameter_the_statement_lacks_is_an_error() -> None:
    with pytest.raises(ValueError, match="event"):
        Statement("SELECT %(a)s", binary=("event",))


def test_a_step_is_one_prepared_statement_and_no_psycopg_cursor(
    pg_storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    running(pg_storage, "a")
    commit = step(pg_storage, "a", events=[done(1)])
    sent: list[bytes] = []
    exec_prepared = prepared._exec
    monkeypatch.setattr(
        prepared, "_exec", lambda pgconn, s, v: sent.append(s.name) or exec_prepared(pgconn, s, v)
    )
    cursors: list[object] = []
    cursor_execute = psycopg.Cursor.execute
    monkeypatch.setattr(
        psycopg.Cursor,
        "execute",
        lambda self, *a, **k: cursors.append(a) or cursor_execute(self, *a, **k),
    )
    pg_storage.commit(commit)
    assert len(sent) == 1 and cursors == []
    conn = pooled(pg_storage)
    rows = conn.execute(
        "SELECT parameter_types::text[] FROM pg_prepared_statements WHERE name = %s",
        [sent[0].decode()],
    ).fetchall()
    assert len(rows) == 1 and "bytea" in rows[0][0]  # prepared once on this connection
    history, _ = pg_storage.load_run("a")
    assert decode_event(history[-1]) == ActivityCompleted(step=1, result=1)


def test_the_fast_create_stores_the_instance_and_its_first_event(pg_storage: Storage) -> None:
    record = InstanceRecord(
        instance_id="c",
        workflow="wf",
        status="running",
        input={"x": 1},
        lease_owner=OWNER,
        lease_expires_at=100.5,
        lease_token="t1",
        created_at=1.25,
        updated_at=1.25,
    )
    stored, created = pg_storage.create_instance(record, started("c"))
    assert created and stored.history_len == 1
    again, created = pg_storage.create_instance(record, started("c"))
    assert not created and again.lease_token == "t1"
    got = pg_storage.get_instance("c")
    assert got is not None and got.input == {"x": 1} and got.created_at == 1.25
    assert got.lease_expires_at == 100.5
    assert pg_storage.load_run("c")[0] == [started("c")]


def test_a_connection_that_forgot_its_prepared_statements_prepares_them_again(
    pg_storage: Storage,
) -> None:
    running(pg_storage, "a")
    pg_storage.commit(step(pg_storage, "a", events=[done(1)]))
    pooled(pg_storage).execute("DEALLOCATE ALL")  # what an activity's ctx.session could do
    pg_storage.commit(step(pg_storage, "a", events=[done(2)]))
    history, _ = pg_storage.load_run("a")
    assert len(history) == 3


def test_a_statement_forgotten_inside_a_transaction_fails_it_and_is_prepared_on_next_use(
    pg_storage: Storage,
) -> None:
    running(pg_storage, "a")
    pg_storage.commit(step(pg_storage, "a", events=[done(1)]))  # prepared on the pooled one
    commit = step(pg_storage, "a", events=[done(2)])
    with pg_storage.transaction() as tx:
        tx.session.execute("DEALLOCATE ALL")  # the same (newest) connection, in a transaction
        with pytest.raises(StorageError, match="does not exist"):
            tx.commit(commit)
    assert len(pg_storage.load_run("a")[0]) == 2  # nothing of the failed transaction
    pg_storage.commit(commit)
    assert len(pg_storage.load_run("a")[0]) == 3

"""PostgreSQL's fast-path statements: one autocommit statement on a pooled connection, with
psycopg's errors and the adapter's retries."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
import pytest

from replaykit.core.errors import StorageError
from replaykit.core.history import ActivityCompleted, encode_event
from replaykit.storage import Storage

from .helpers import running, step

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

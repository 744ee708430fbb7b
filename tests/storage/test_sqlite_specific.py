"""SQLite-only behaviour: WAL, busy retries, URL forms, the in-memory database, sessions."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from replaykit.core.errors import StorageError
from replaykit.storage import Storage
from storage_adapters import open_storage
from storage_adapters.sqlite import SqliteStorage, parse_sqlite_url

from .helpers import create, run_threads, running, step


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "rk.db"


@pytest.fixture
def sqlite_storage(db_path: Path) -> Iterator[Storage]:
    storage = open_storage(f"sqlite:///{db_path}", busy_timeout=0.01)
    yield storage
    storage.close()


def test_url_forms() -> None:
    assert parse_sqlite_url("sqlite:///rel/x.db") == ("rel/x.db", False)
    assert parse_sqlite_url("sqlite:////abs/x.db") == ("/abs/x.db", False)
    assert parse_sqlite_url("sqlite://:memory:") == (":memory:", True)


def test_wal_mode_and_synchronous(db_path: Path) -> None:
    storage = SqliteStorage(f"sqlite:///{db_path}", synchronous="NORMAL")
    try:
        storage.migrate()
        with storage.transaction() as tx:
            db = tx.session
            assert isinstance(db, sqlite_utils.Database)
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    finally:
        storage.close()
    with pytest.raises(ValueError):
        SqliteStorage(f"sqlite:///{db_path}", synchronous="SOMETIMES")


def test_busy_database_is_retried_not_raised(sqlite_storage: Storage, db_path: Path) -> None:
    """A second adapter (its own connections, as another process would have) holds the write
    lock far longer than busy_timeout; writes of the first wait and then succeed."""
    other = open_storage(f"sqlite:///{db_path}", busy_timeout=0.01)
    holding = threading.Event()

    def hold_the_write_lock() -> None:
        with other.transaction() as tx:
            tx.session.execute("CREATE TABLE blocker (x)")
            holding.set()
            time.sleep(0.4)

    thread = threading.Thread(target=hold_the_write_lock)
    thread.start()
    try:
        holding.wait(5)
        started = time.monotonic()
        create(sqlite_storage, "a")
        assert time.monotonic() - started >= 0.2
    finally:
        thread.join()
        other.close()
    assert sqlite_storage.get_instance("a") is not None


def test_many_threads_writing_at_once(sqlite_storage: Storage) -> None:
    def writer(n: int) -> None:
        for i in range(15):
            create(sqlite_storage, f"t{n}-{i}")

    run_threads(6, writer)
    assert sqlite_storage.stats()["by_status"] == {"pending": 90}


def test_in_memory_database_is_shared_by_threads() -> None:
    storage = open_storage("sqlite://:memory:")
    try:
        create(storage, "main")
        seen: list[bool] = []

        def worker(n: int) -> None:
            seen.append(storage.get_instance("main") is not None)
            for i in range(10):
                create(storage, f"m{n}-{i}")

        run_threads(4, worker)
        assert seen == [True] * 4
        assert len(storage.list_instances(limit=100)) == 41
    finally:
        storage.close()


@pytest.mark.parametrize("group_commit", [True, False])
def test_user_writes_commit_and_roll_back_with_the_step(db_path: Path, group_commit: bool) -> None:
    storage = open_storage(f"sqlite:///{db_path}", group_commit=group_commit)
    try:
        running(storage, "a")
        commit = step(storage, "a", events=[b"{}"])
        with pytest.raises(RuntimeError), storage.transaction() as tx:
            tx.session["orders"].insert({"id": 1})
            raise RuntimeError("boom")
        with storage.transaction() as tx:
            assert not tx.session["orders"].exists()
            tx.session["orders"].insert({"id": 2})
            tx.commit(commit)
        with storage.transaction() as tx:
            assert [row["id"] for row in tx.session["orders"].rows] == [2]
        assert len(storage.load_history("a")) == 2
    finally:
        storage.close()


@pytest.mark.parametrize("group_commit", [True, False])
def test_an_activity_takes_the_write_lock_only_when_it_touches_the_session(
    db_path: Path, group_commit: bool
) -> None:
    """Until then another process (here: another adapter) writes without waiting."""
    storage = open_storage(f"sqlite:///{db_path}", group_commit=group_commit)
    other = open_storage(f"sqlite:///{db_path}", busy_timeout=0.01, retry_seconds=0.05)
    try:
        running(storage, "a")
        with storage.transaction() as tx:
            create(other, "b")  # would time out if this transaction held the write lock
            tx.session.execute("SELECT 1")
            with pytest.raises(StorageError, match="locked"):
                create(other, "c")
            tx.commit(step(storage, "a", events=[b"{}"]))
        create(other, "c")
        assert len(storage.load_history("a")) == 2
    finally:
        other.close()
        storage.close()


def test_wait_for_wakeup_just_sleeps(sqlite_storage: Storage) -> None:
    assert sqlite_storage.notifies is False
    started = time.monotonic()
    assert sqlite_storage.wait_for_wakeup(0.05) is False
    assert time.monotonic() - started >= 0.04


def test_none_and_bytes_parameters_bind_as_null_and_blob_without_an_adapter_search(
    sqlite_storage: Storage,
) -> None:
    import sqlite3

    from storage_adapters.sqlite.adapter import bind_none_and_bytes_directly

    bind_none_and_bytes_directly()
    key_none, key_bytes = (type(None), sqlite3.PrepareProtocol), (bytes, sqlite3.PrepareProtocol)
    assert key_none in sqlite3.adapters and key_bytes in sqlite3.adapters
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a, b)")
    conn.execute("INSERT INTO t VALUES (?, ?)", (None, b"\x00raw"))
    assert conn.execute("SELECT typeof(a), typeof(b), b FROM t").fetchone() == (
        "null",
        "blob",
        b"\x00raw",
    )
    conn.close()


def test_an_adapter_the_application_registered_for_bytes_is_kept() -> None:
    import sqlite3

    from storage_adapters.sqlite.adapter import bind_none_and_bytes_directly

    key = (bytes, sqlite3.PrepareProtocol)
    saved = sqlite3.adapters.pop(key, None)

    def mine(value: bytes) -> bytes:
        return value

    try:
        sqlite3.register_adapter(bytes, mine)
        bind_none_and_bytes_directly()
        assert sqlite3.adapters[key] is mine
    finally:
        sqlite3.adapters.pop(key, None)
        if saved is not None:
            sqlite3.adapters[key] = saved


def test_every_write_of_every_thread_runs_on_the_one_writer_connection(db_path: Path) -> None:
    storage = open_storage(f"sqlite:///{db_path}", group_commit=False)
    assert isinstance(storage, SqliteStorage)
    seen: set[int] = set()
    original = storage._take_writer

    def spy(begin: str) -> Any:
        written = original(begin)
        seen.add(id(written.conn))
        return written

    storage._take_writer = spy  # type: ignore[method-assign]
    try:
        run_threads(6, lambda i: running(storage, f"w{i}"))
        assert len(seen) == 1
        assert storage._writer_thread is None  # every write handed the writer on
        assert len(storage.list_instances(limit=10)) == 6
    finally:
        storage.close()


def test_a_thread_whose_write_is_open_reads_its_own_writes_and_cannot_begin_another(
    db_path: Path,
) -> None:
    storage = open_storage(f"sqlite:///{db_path}")
    try:
        running(storage, "a")
        with storage.transaction() as tx:
            tx.session["orders"].insert({"id": 1})
            assert storage.get_instance("a") is not None  # a read inside the write
            assert tx.session.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 1
            with pytest.raises(StorageError, match="already has a replaykit transaction"):
                create(storage, "b")
            tx.commit(step(storage, "a", events=[b"{}"]))
        create(storage, "b")  # the writer was handed on
        assert storage.get_instance("b") is not None
    finally:
        storage.close()


def test_a_second_thread_writes_once_the_first_ends_its_transaction(db_path: Path) -> None:
    storage = open_storage(f"sqlite:///{db_path}", busy_timeout=5.0)
    try:
        running(storage, "a")
        in_write, created = threading.Event(), threading.Event()

        def other() -> None:
            in_write.wait(5)
            create(storage, "b")
            created.set()

        thread = threading.Thread(target=other)
        thread.start()
        with storage.transaction() as tx:
            tx.session.execute("SELECT 1")  # begins the write
            in_write.set()
            assert not created.wait(0.2)  # waits for the writer
            tx.commit(step(storage, "a", events=[b"{}"]))
        assert created.wait(5)
        thread.join(5)
    finally:
        storage.close()


def test_the_claim_owner_and_parent_indexes_hold_only_the_rows_their_queries_look_for(
    sqlite_storage: Storage, db_path: Path
) -> None:
    """Migration 0021: a running instance's step moves no claim-index entry; the lease index
    stays whole (the claim query's expired-lease arm uses it)."""
    running(sqlite_storage, "a")
    db = sqlite_utils.Database(db_path)
    defs = {
        row["name"]: row["sql"]
        for row in db.query("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
    }
    assert defs["rk_instances_claim"].endswith("WHERE status = 'pending'")
    assert defs["rk_instances_owner"].endswith("WHERE lease_owner IS NOT NULL")
    assert defs["rk_instances_parent"].endswith("WHERE parent_id IS NOT NULL")
    assert "WHERE" not in defs["rk_instances_lease"]
    plan = " ".join(
        str(row["detail"])
        for row in db.query(
            "EXPLAIN QUERY PLAN SELECT instance_id FROM rk_instances WHERE (status = 'pending' "
            "OR (status = 'running' AND lease_expires_at < 5)) ORDER BY updated_at LIMIT 5"
        )
    )
    assert "rk_instances_lease (status=? AND lease_expires_at<?)" in plan
    db.close()

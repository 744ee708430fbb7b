"""MySQL/MariaDB-only behaviour: GET_LOCK around migrate, SKIP LOCKED claims, the session,
case-sensitive keys, lost connections."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from replaykit.core.errors import StorageError
from replaykit.storage import Storage
from storage_adapters import open_storage
from storage_adapters.migrations import load_migrations
from storage_adapters.mysql import MysqlStorage
from storage_adapters.mysql.adapter import MysqlSession, connect_args, open_connection

from .helpers import LEASE, create, run_threads, running, step, timer

pytestmark = pytest.mark.mysql


@pytest.fixture
def my_storage(mysql_database_dsn: str) -> Iterator[Storage]:
    storage = open_storage(mysql_database_dsn, max_pool=4)
    yield storage
    storage.close()


@pytest.fixture
def raw(mysql_database_dsn: str) -> Iterator[Any]:
    """A PyMySQL connection of the test's own (autocommit off, like the adapter's)."""
    conn = open_connection(connect_args(mysql_database_dsn))
    yield conn
    conn.close()


def test_concurrent_migrate_applies_each_migration_once(mysql_database_dsn: str) -> None:
    storages = [MysqlStorage(mysql_database_dsn) for _ in range(6)]
    try:
        applied = run_threads(6, lambda i: storages[i].migrate())
    finally:
        for storage in storages:
            storage.close()
    shipped = [m.version for m in load_migrations("storage_adapters.mysql")]
    assert sorted(applied) == [[], [], [], [], [], shipped]
    conn = open_connection(connect_args(mysql_database_dsn))
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT version FROM schema_migrations")
        assert sorted(cursor.fetchall()) == [(version,) for version in shipped]
    finally:
        conn.close()


def test_migrate_waits_for_the_lock_and_says_so_when_it_times_out(
    mysql_database_dsn: str, raw: Any
) -> None:
    cursor = raw.cursor()
    cursor.execute("SELECT GET_LOCK(CONCAT('replaykit.migrate:', SHA1(DATABASE())), 1)")
    assert cursor.fetchone() == (1,)
    storage = MysqlStorage(mysql_database_dsn, migrate_lock_seconds=0.2)
    try:
        with pytest.raises(StorageError, match="migration lock"):
            storage.migrate()
        cursor.execute("SELECT RELEASE_LOCK(CONCAT('replaykit.migrate:', SHA1(DATABASE())))")
        assert storage.migrate() == [m.version for m in load_migrations("storage_adapters.mysql")]
    finally:
        storage.close()


def test_claims_from_many_threads_never_share_an_instance(my_storage: Storage) -> None:
    for i in range(40):
        create(my_storage, f"i{i:02}", now=float(i))

    def claim(i: int) -> list[str]:
        got: list[str] = []
        for _ in range(10):
            records = my_storage.claim(f"w{i}", limit=3, lease_seconds=LEASE, now=100.0)
            got += [r.instance_id for r in records]
        return got

    claimed = run_threads(8, claim)
    flat = [instance_id for ids in claimed for instance_id in ids]
    assert len(flat) == len(set(flat)) == 40
    owners = {r.instance_id: r.lease_owner for r in my_storage.list_instances(limit=100)}
    assert all(owners[i] == f"w{n}" for n, ids in enumerate(claimed) for i in ids)


def test_claim_skips_a_row_another_transaction_holds(my_storage: Storage, raw: Any) -> None:
    create(my_storage, "a", now=1.0)
    create(my_storage, "b", now=2.0)
    cursor = raw.cursor()
    cursor.execute("SELECT instance_id FROM rk_instances WHERE instance_id = 'a' FOR UPDATE")
    try:
        records = my_storage.claim("w", limit=2, lease_seconds=LEASE, now=10.0)
        assert [r.instance_id for r in records] == ["b"]
    finally:
        raw.rollback()
    assert [r.instance_id for r in my_storage.claim("w", limit=2, lease_seconds=LEASE, now=10.0)]


def test_timers_due_together_fire_in_order_or_wait_for_a_locked_instance(
    my_storage: Storage, raw: Any
) -> None:
    # Two timers due at the same moment must wake their instances in (fire_at, instance id)
    # order. A row lock on the first instance (on MySQL a scan of rk_instances, such as a
    # claim's, takes one for a moment) once let the second fire alone, so it ran first and took
    # a competing message the first would have taken (a differential-suite flake).
    for instance_id in ("a", "b"):
        running(my_storage, instance_id)
        my_storage.commit(step(my_storage, instance_id, timers=[timer(1, 10.0)], status="waiting"))
    cursor = raw.cursor()
    cursor.execute("SELECT instance_id FROM rk_instances WHERE instance_id = 'a' FOR UPDATE")
    try:
        assert my_storage.fire_due_timers(now=20.0) == []
    finally:
        raw.rollback()
    assert my_storage.fire_due_timers(now=20.0) == ["a", "b"]


def test_session_is_the_open_transaction(my_storage: Storage) -> None:
    running(my_storage, "a")
    with my_storage.transaction() as tx:
        tx.session.execute("CREATE TABLE orders (id INT)")  # DDL commits: keep it outside
    commit = step(my_storage, "a", events=[b"{}"])
    with pytest.raises(RuntimeError), my_storage.transaction() as tx:
        assert isinstance(tx.session, MysqlSession)
        tx.session.execute("INSERT INTO orders VALUES (%s)", (1,))
        raise RuntimeError("boom")
    with my_storage.transaction() as tx:
        tx.session.execute("INSERT INTO orders VALUES (%s)", (2,))
        tx.commit(commit)
    with my_storage.transaction() as tx:
        assert tx.session.execute("SELECT id FROM orders").fetchall() == ((2,),)
    assert len(my_storage.load_history("a")) == 2


def test_keys_are_compared_byte_for_byte(my_storage: Storage) -> None:
    # migration 0010: the NO PAD binary collation, so trailing spaces count too (see docs/mysql.md)
    for instance_id in ("order", "Order", "ORDER", "order ", "order  "):
        create(my_storage, instance_id)
    assert len(my_storage.list_instances()) == 5


def test_every_text_column_of_every_table_compares_byte_for_byte(
    my_storage: Storage, raw: Any
) -> None:
    # 0010 and 0018: no table keeps a PAD SPACE collation, where "q" and "q " are one key
    my_storage.migrate()
    cursor = raw.cursor()
    cursor.execute(
        "SELECT table_name, column_name, collation_name FROM information_schema.columns"
        " WHERE table_schema = DATABASE() AND table_name LIKE 'rk%%'"
        " AND collation_name IS NOT NULL"
    )
    columns = cursor.fetchall()
    assert {row[0] for row in columns} >= {"rk_instances", "rk_schedules", "rk_queues"}
    padded = []
    for table, column, collation in columns:
        cursor.execute(f"SELECT 'q' = 'q ' COLLATE {collation}")
        if cursor.fetchone()[0]:
            padded.append((table, column, collation))
    assert padded == []


def test_mariadb_url_polls_instead_of_notifying(mysql_database_dsn: str) -> None:
    storage = open_storage(mysql_database_dsn.replace("mysql://", "mariadb://", 1))
    try:
        assert isinstance(storage, MysqlStorage)
        assert storage.notifies is False
        assert storage.wait_for_wakeup(0.01) is False
    finally:
        storage.close()


def test_a_connection_the_server_dropped_is_replaced(my_storage: Storage, raw: Any) -> None:
    create(my_storage, "a")
    assert isinstance(my_storage, MysqlStorage)
    pooled = my_storage._pool._idle[-1]
    raw.cursor().execute(f"KILL CONNECTION {pooled.thread_id()}")
    record = my_storage.get_instance("a")
    assert record is not None and record.instance_id == "a"
    assert pooled not in my_storage._pool._idle

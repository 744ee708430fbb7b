"""The transaction of a transactional activity, on every adapter (part of the storage contract:
``storage`` runs SQLite with and without group commit, PostgreSQL and MySQL).

What the runtime relies on: no transaction is begun before the activity touches ``session``;
``commit(step)`` records the step atomically with the session's writes and returns its real
outcome; ``rollback()``, an exception or leaving the block without an outcome records nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from replaykit.core.errors import LeaseLost, StorageError
from replaykit.storage import Storage
from storage_adapters import open_storage

from .helpers import running, step


def param(storage: Storage) -> str:
    """The session's placeholder: sqlite-utils takes ``?``, psycopg and PyMySQL ``%s``."""
    return "?" if storage.url.startswith("sqlite") else "%s"


def make_ledger(storage: Storage) -> None:
    """Create a user table through a committed session (MySQL commits DDL at once anyway)."""
    running(storage, "setup")
    with storage.transaction() as tx:
        tx.session.execute("CREATE TABLE ledger (entry INTEGER)")
        tx.commit(step(storage, "setup", events=[b"{}"]))


def insert(tx: Any, storage: Storage, entry: int) -> None:
    tx.session.execute(f"INSERT INTO ledger (entry) VALUES ({param(storage)})", [entry])


def ledger(storage: Storage) -> list[int]:
    with storage.transaction() as tx:  # left without an outcome: rolled back (a read)
        rows = tx.session.execute("SELECT entry FROM ledger ORDER BY entry").fetchall()
    return [row[0] for row in rows]


def history_len(storage: Storage, instance_id: str) -> int:
    record = storage.get_instance(instance_id)
    assert record is not None
    return record.history_len


def test_commit_records_the_step_and_returns_its_outcome(storage: Storage) -> None:
    running(storage, "a")
    with storage.transaction() as tx:
        result = tx.commit(step(storage, "a", events=[b"{}"], status="completed"))
    assert result.released
    record = storage.get_instance("a")
    assert record is not None and record.status == "completed" and record.history_len == 2


def test_session_writes_commit_atomically_with_the_step(storage: Storage) -> None:
    make_ledger(storage)
    running(storage, "a")
    with storage.transaction() as tx:
        insert(tx, storage, 1)
        result = tx.commit(step(storage, "a", events=[b"{}"], status="completed"))
    assert result.released  # the real outcome, known when commit returns
    assert ledger(storage) == [1]
    assert history_len(storage, "a") == 2


def test_rollback_discards_the_session_writes_and_records_no_step(storage: Storage) -> None:
    make_ledger(storage)
    running(storage, "a")
    with storage.transaction() as tx:
        insert(tx, storage, 1)
        tx.rollback()
    assert ledger(storage) == []
    assert history_len(storage, "a") == 1


def test_an_exception_in_the_block_rolls_back_and_passes_through(storage: Storage) -> None:
    make_ledger(storage)
    with pytest.raises(RuntimeError, match="activity failed"), storage.transaction() as tx:
        insert(tx, storage, 1)
        raise RuntimeError("activity failed after writing")
    assert ledger(storage) == []


def test_a_block_left_without_an_outcome_rolls_back(storage: Storage) -> None:
    make_ledger(storage)
    with storage.transaction() as tx:
        insert(tx, storage, 1)
    assert ledger(storage) == []


@pytest.mark.parametrize("touched", [False, True], ids=["untouched", "touched"])
def test_lease_lost_records_nothing(storage: Storage, touched: bool) -> None:
    make_ledger(storage)
    running(storage, "a")
    with pytest.raises(LeaseLost), storage.transaction() as tx:
        if touched:
            insert(tx, storage, 1)
        tx.commit(step(storage, "a", events=[b"{}"], owner="intruder"))
    assert ledger(storage) == []
    assert history_len(storage, "a") == 1


@pytest.mark.parametrize("touched", [False, True], ids=["untouched", "touched"])
def test_a_database_error_of_the_step_is_a_storage_error(storage: Storage, touched: bool) -> None:
    make_ledger(storage)
    running(storage, "a")
    commit = step(storage, "a", events=[b"{}"])
    commit.history_len = 0  # position 0 is taken: the database refuses the append
    with pytest.raises(StorageError) as info, storage.transaction() as tx:
        if touched:
            insert(tx, storage, 1)
        tx.commit(commit)
    assert info.value.__cause__ is not None  # the driver's error, never raw
    assert ledger(storage) == []
    assert len(storage.load_history("a")) == 1


@pytest.mark.parametrize("end", ["commit", "rollback"])
def test_a_transaction_ends_once(storage: Storage, end: str) -> None:
    running(storage, "a")
    with storage.transaction() as tx:
        assert tx.session is not None
        if end == "commit":
            tx.commit(step(storage, "a", events=[b"{}"]))
        else:
            tx.rollback()
        with pytest.raises(StorageError, match="has ended"):
            _ = tx.session
        with pytest.raises(StorageError, match="has ended"):
            tx.commit(step(storage, "a", events=[b"{}"]))
        with pytest.raises(StorageError, match="has ended"):
            tx.rollback()
    assert history_len(storage, "a") == (2 if end == "commit" else 1)


def test_an_untouched_transaction_begins_nothing_and_commits_the_ordinary_way(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An activity that never touches ``ctx.session`` opens no transaction of its own: its step
    goes through ``Storage.commit`` (the fast path, group commit, or a plain transaction)."""
    running(storage, "a")
    commit = step(storage, "a", events=[b"{}"], status="completed")
    opened: list[dict[str, Any]] = []
    committed: list[Any] = []
    real_open, real_commit = storage._open, storage.commit  # type: ignore[attr-defined]

    def spy_open(**options: Any) -> Any:
        opened.append(options)
        return real_open(**options)

    def spy_commit(commit: Any) -> Any:
        committed.append(commit)
        return real_commit(commit)

    monkeypatch.setattr(storage, "_open", spy_open)
    monkeypatch.setattr(storage, "commit", spy_commit)
    commits_before = storage.commits  # type: ignore[attr-defined]
    with storage.transaction() as tx:
        assert opened == []  # the activity runs here: nothing begun, no connection held
        result = tx.commit(commit)
    assert committed == [commit] and result.released
    assert storage.commits == commits_before + 1  # type: ignore[attr-defined]
    assert history_len(storage, "a") == 2


def test_a_touched_transaction_is_one_commit(storage: Storage) -> None:
    make_ledger(storage)
    running(storage, "a")
    commits_before = storage.commits  # type: ignore[attr-defined]
    with storage.transaction() as tx:
        insert(tx, storage, 1)
        tx.commit(step(storage, "a", events=[b"{}"]))
    assert storage.commits == commits_before + 1  # type: ignore[attr-defined]


#: one pooled connection (and a short wait for it) on the adapters with a pool
ONE_CONNECTION = {
    "postgres": {"min_pool": 1, "max_pool": 1},
    "mysql": {"max_pool": 1, "pool_timeout": 1.0},
}


@pytest.mark.parametrize(
    "adapter",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
)
def test_an_untouched_transaction_holds_no_pooled_connection(
    adapter: str, storage_url: str
) -> None:
    """While the activity runs without touching the session, the pool's one connection is free
    (before, MySQL and PostgreSQL held one for the whole activity)."""
    storage = open_storage(storage_url, **ONE_CONNECTION[adapter])
    try:
        running(storage, "a")
        with storage.transaction() as tx:
            assert storage.get_instance("a") is not None  # would wait for the held connection
            tx.commit(step(storage, "a", events=[b"{}"]))
        assert history_len(storage, "a") == 2
    finally:
        storage.close()

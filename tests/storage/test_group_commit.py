"""Group commit on SQLite: concurrent steps share a transaction, yet each stands or falls alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from replaykit.core.errors import LeaseLost, StorageError
from storage_adapters.group_commit import GroupCommit
from storage_adapters.sql_steps import SqlTx
from storage_adapters.sqlite import SqliteStorage

from .helpers import run_threads, running, step


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[SqliteStorage]:
    opened = SqliteStorage(f"sqlite:///{tmp_path / 'rk.db'}")
    opened.migrate()
    yield opened
    opened.close()


def committer(storage: SqliteStorage) -> GroupCommit:
    assert storage.committer is not None
    return storage.committer


def hold_first_batch(storage: SqliteStorage, queued: int) -> None:
    """Make the next batch wait inside its transaction until ``queued`` more units are queued,
    so that they are written together by the batch after it."""
    group = committer(storage)
    original = group._write
    held = threading.Event()

    def write(batch: list[Any]) -> None:
        if not held.is_set():
            held.set()
            deadline = time.monotonic() + 10
            while len(group._queue) < queued and time.monotonic() < deadline:
                time.sleep(0.001)
        original(batch)

    group._write = write  # type: ignore[method-assign]


def test_a_lone_unit_is_written_at_once_in_its_own_transaction(storage: SqliteStorage) -> None:
    running(storage, "a")
    group = committer(storage)
    before = (group.batches, group.units)
    storage.commit(step(storage, "a", events=[b"{}"]))
    assert (group.batches - before[0], group.units - before[1]) == (1, 1)
    assert len(storage.load_history("a")) == 2


def test_steps_queued_while_a_batch_is_written_share_the_next_transaction(
    storage: SqliteStorage,
) -> None:
    ids = [f"i{n}" for n in range(9)]
    for instance_id in ids:
        running(storage, instance_id)
    commits = [step(storage, i, events=[b"{}"], status="completed") for i in ids]
    group = committer(storage)
    before = (group.batches, group.units)
    hold_first_batch(storage, queued=8)
    results = run_threads(9, lambda n: storage.commit(commits[n]))
    assert all(result.released for result in results)
    assert (group.batches - before[0], group.units - before[1]) == (2, 9)
    for instance_id in ids:
        record = storage.get_instance(instance_id)
        assert record is not None and record.status == "completed" and record.history_len == 2


def test_a_unit_that_fails_is_rolled_back_alone(storage: SqliteStorage) -> None:
    for instance_id in ("a", "b", "c", "d"):
        running(storage, instance_id)
    commits = [
        step(storage, "a", events=[b"{}"]),
        step(storage, "b", events=[b"{}"]),
        step(storage, "c", events=[b"{}"], owner="intruder"),  # lost lease
        step(storage, "d", events=[b"{}"]),
    ]
    hold_first_batch(storage, queued=3)
    outcomes: list[Any] = [None] * 4

    def commit(n: int) -> None:
        try:
            outcomes[n] = storage.commit(commits[n])
        except LeaseLost as exc:
            outcomes[n] = exc

    run_threads(4, commit)
    assert isinstance(outcomes[2], LeaseLost)
    assert [len(storage.load_history(i)) for i in ("a", "b", "c", "d")] == [2, 2, 1, 2]


def test_a_database_error_in_one_unit_reaches_only_its_caller(storage: SqliteStorage) -> None:
    running(storage, "a")
    group = committer(storage)
    hold_first_batch(storage, queued=2)

    def good(tx: SqlTx) -> str:
        tx.run("UPDATE rk_instances SET history_len = 7 WHERE instance_id = 'a'")
        return "ok"

    def bad(tx: SqlTx) -> str:
        tx.run("INSERT INTO no_such_table VALUES (1)")
        return "unreachable"

    def first(tx: SqlTx) -> str:
        return "first"

    outcomes: list[Any] = [None] * 3

    def submit(n: int) -> None:
        if n:
            time.sleep(0.05)  # let thread 0 lead the held batch
        try:
            outcomes[n] = group.submit([first, good, bad][n])
        except StorageError as exc:
            outcomes[n] = exc

    run_threads(3, submit)
    assert outcomes[:2] == ["first", "ok"]
    assert isinstance(outcomes[2], StorageError) and "no_such_table" in str(outcomes[2])
    record = storage.get_instance("a")
    assert record is not None and record.history_len == 7


def test_a_unit_is_durable_when_submit_returns(storage: SqliteStorage, tmp_path: Path) -> None:
    running(storage, "a")
    storage.commit(step(storage, "a", events=[b"{}"], status="completed"))
    other = SqliteStorage(f"sqlite:///{tmp_path / 'rk.db'}")  # another connection, another view
    try:
        record = other.get_instance("a")
        assert record is not None and record.status == "completed"
    finally:
        other.close()


def test_an_activity_that_touches_the_session_commits_with_its_step(
    storage: SqliteStorage,
) -> None:
    running(storage, "a")
    group = committer(storage)
    before = group.units
    with storage.transaction() as tx:
        tx.session.execute("CREATE TABLE orders (id INTEGER)")
        tx.session.execute("INSERT INTO orders VALUES (1)")
        tx.commit(step(storage, "a", events=[b"{}"]))
    with pytest.raises(RuntimeError), storage.transaction() as tx:
        tx.session.execute("INSERT INTO orders VALUES (2)")
        raise RuntimeError("after writing")
    with storage.transaction() as tx:
        assert [row[0] for row in tx.session.execute("SELECT id FROM orders")] == [1]
    assert len(storage.load_history("a")) == 2
    assert group.units == before  # its own transaction, not the group's


def test_an_activity_that_never_touches_the_session_commits_through_the_group(
    storage: SqliteStorage,
) -> None:
    running(storage, "a")
    group = committer(storage)
    before = group.units
    with storage.transaction() as tx:
        outcome = tx.commit(step(storage, "a", events=[b"{}"], status="completed"))
    assert outcome.released is True
    assert group.units == before + 1


def test_group_commit_can_be_turned_off(tmp_path: Path) -> None:
    plain = SqliteStorage(f"sqlite:///{tmp_path / 'plain.db'}", group_commit=False)
    try:
        plain.migrate()
        assert plain.committer is None
        running(plain, "a")
        plain.commit(step(plain, "a", events=[b"{}"]))
        assert len(plain.load_history("a")) == 2
    finally:
        plain.close()

"""An unreachable database fails ``App.start()`` at once, with the driver's reason in the
``StorageError`` (not a pool timeout after 30 s): a refused port, an unknown host, a missing
database; on PostgreSQL and MySQL."""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from replaykit import StorageError
from replaykit.runtime.app import App

UNREACHABLE = {
    "postgresql-refused": ("postgresql://postgres@127.0.0.1:1/x", "Connection refused"),
    "postgresql-unknown-host": ("postgresql://postgres@no-such-host.invalid/x", "resolve host"),
    "mysql-refused": ("mysql://root@127.0.0.1:1/x", "Connection refused"),
    "mysql-unknown-host": ("mysql://root@no-such-host.invalid/x", "no-such-host.invalid"),
}


def start_fails(url: str) -> str:
    began = time.monotonic()
    with pytest.raises(StorageError) as info:
        App(url, workers=False).start()
    assert time.monotonic() - began < 5.0
    return str(info.value)


@pytest.mark.parametrize("case", sorted(UNREACHABLE))
def test_an_unreachable_server_fails_start_at_once_with_the_reason(case: str) -> None:
    url, reason = UNREACHABLE[case]
    message = start_fails(url)
    assert reason in message and "cannot connect to" in message


def missing_database(dsn: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/rk_missing_{uuid.uuid4().hex[:8]}"))


@pytest.mark.postgres
def test_a_missing_postgres_database_fails_start_at_once_with_the_reason(pg_dsn: str) -> None:
    url = missing_database(pg_dsn)
    message = start_fails(url)
    assert "does not exist" in message and urlsplit(url).path.lstrip("/") in message


@pytest.mark.mysql
def test_a_missing_mysql_database_fails_start_at_once_with_the_reason(mysql_dsn: str) -> None:
    url = missing_database(mysql_dsn)
    message = start_fails(url)
    assert "Unknown database" in message


def test_the_password_is_not_shown() -> None:
    message = start_fails("postgresql://app:s3cret@127.0.0.1:1/x")
    assert "s3cret" not in message and "app:***@127.0.0.1:1" in message

"""Shared fixtures: database servers for the PostgreSQL and MySQL tests.

The DSNs come from ``REPLAYKIT_TEST_PG_DSN`` / ``REPLAYKIT_TEST_MYSQL_DSN``; when a variable is not
set, the local test server is tried (``postgresql://postgres@127.0.0.1:5432/test``,
``mysql://root@127.0.0.1:3306/test``), so the README's test command runs them wherever those
servers run. An unreachable server, or a variable set to the empty string, skips the tests with
the reason shown; under ``CI=true`` an unreachable server is a failure, so CI cannot pass by
silently skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

PG_ENV = "REPLAYKIT_TEST_PG_DSN"
MYSQL_ENV = "REPLAYKIT_TEST_MYSQL_DSN"
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
MYSQL_DEFAULT = "mysql://root@127.0.0.1:3306/test"


def _unreachable(what: str, dsn: str, err: BaseException) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {what} at {dsn} is unreachable: {err}")
    pytest.skip(f"{what} at {dsn} is unreachable: {err}")


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    dsn = os.environ.get(PG_ENV, PG_DEFAULT)
    if not dsn:
        pytest.skip(f"PostgreSQL tests turned off: {PG_ENV} is set to the empty string")
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=3):
            pass
    except Exception as err:
        _unreachable("PostgreSQL", dsn, err)
    return dsn


@pytest.fixture
def pg_schema_dsn(pg_dsn: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A postgresql:// URL whose search_path is a fresh schema, dropped (CASCADE) afterwards."""
    import psycopg
    from psycopg import sql

    schema = f"rk_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        sep = "&" if "?" in pg_dsn else "?"
        yield f"{pg_dsn}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="session")
def mysql_dsn() -> str:
    """``REPLAYKIT_TEST_MYSQL_DSN`` (or the local default) after a real PyMySQL connection to it
    succeeded."""
    dsn = os.environ.get(MYSQL_ENV, MYSQL_DEFAULT)
    if not dsn:
        pytest.skip(f"MySQL tests turned off: {MYSQL_ENV} is set to the empty string")
    try:
        from storage_adapters.mysql.adapter import connect_args, open_connection
    except ImportError as err:
        _unreachable("MySQL (PyMySQL is not installed: pip install -e '.[dev]')", dsn, err)
    try:
        open_connection({**connect_args(dsn), "connect_timeout": 3}).close()
    except Exception as err:
        _unreachable("MySQL", dsn, err)
    return dsn


@pytest.fixture
def mysql_database_dsn(mysql_dsn: str) -> Iterator[str]:
    """A mysql:// URL of a fresh database ``rk_test_<hex>``, dropped afterwards."""
    from storage_adapters.mysql.adapter import scratch_database

    with scratch_database(mysql_dsn, "rk_test") as url:
        yield url

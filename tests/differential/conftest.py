"""The backends of the differential suite: an empty database for every scenario run.

SQLite gets a new file per run (twice: with group commit, the default, and without, whose
transactions take their own path: ``sqlite-plain``). PostgreSQL and MySQL get one schema
(database) per test session, migrated once, whose ``rk_*`` tables are emptied before every run
(creating and migrating a MySQL database per run would cost most of a second)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from storage_adapters import open_storage

from ..storage.conftest import OPTIONS, STORAGE_ADAPTERS

Emptier = Callable[[], None]


@pytest.fixture(params=STORAGE_ADAPTERS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def app_options(backend: str) -> dict[str, Any]:
    """Options of the App for ``backend`` (its storage options)."""
    return {"storage_options": OPTIONS.get(backend, {})}


@pytest.fixture(scope="session")
def pg_session_schema(pg_dsn: str) -> Iterator[tuple[str, Emptier]]:
    import psycopg
    from psycopg import sql

    schema = f"rk_diff_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    sep = "&" if "?" in pg_dsn else "?"
    url = f"{pg_dsn}{sep}options=-csearch_path%3D{schema}"
    open_storage(url).close()  # migrate once

    def empty() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename LIKE 'rk%%'",
                (schema,),
            ).fetchall()
            tables = sql.SQL(", ").join(sql.Identifier(schema, r[0]) for r in rows)
            conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(tables))

    try:
        yield url, empty
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="session")
def mysql_session_database(mysql_dsn: str) -> Iterator[tuple[str, Emptier]]:
    from storage_adapters.mysql.adapter import connect_args, open_connection, scratch_database

    with scratch_database(mysql_dsn, "rk_diff") as url:
        open_storage(url).close()  # migrate once

        def empty() -> None:
            conn = open_connection(connect_args(url))
            try:
                with conn.cursor() as cursor:
                    cursor.execute("SHOW TABLES LIKE 'rk%%'")
                    for (table,) in cursor.fetchall():
                        cursor.execute(f"DELETE FROM `{table}`")
                conn.commit()
            finally:
                conn.close()

        yield url, empty


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database of ``backend``."""
    if backend.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'rk.db'}"
    fixture = "pg_session_schema" if backend == "postgres" else "mysql_session_database"
    url, empty = request.getfixturevalue(fixture)
    empty()
    return str(url)

"""The storage contract runs against every adapter: ``storage`` is parametrized over them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from replaykit.storage import Storage
from storage_adapters import open_storage

ADAPTERS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
]
#: the fixture giving each server adapter a fresh database (schema) URL
SERVER_URLS = {"postgres": "pg_schema_dsn", "mysql": "mysql_database_dsn"}
#: the storage suite also runs on SQLite without group commit (its own transaction paths)
STORAGE_ADAPTERS = [ADAPTERS[0], "sqlite-plain", *ADAPTERS[1:]]
OPTIONS: dict[str, dict[str, Any]] = {"sqlite-plain": {"group_commit": False}}


@pytest.fixture(params=STORAGE_ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def storage_url(adapter: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database for the adapter under test."""
    if adapter.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'replaykit.db'}"
    url: str = request.getfixturevalue(SERVER_URLS[adapter])
    return url


@pytest.fixture
def open_new(storage_url: str, adapter: str) -> Iterator[Callable[..., Storage]]:
    """Open more adapters on the same database (all closed after the test)."""
    opened: list[Storage] = []

    def factory(auto_migrate: bool = True) -> Storage:
        storage = open_storage(storage_url, auto_migrate=auto_migrate, **OPTIONS.get(adapter, {}))
        opened.append(storage)
        return storage

    yield factory
    for storage in opened:
        storage.close()


@pytest.fixture
def storage(open_new: Callable[..., Storage]) -> Storage:
    return open_new()


@pytest.fixture
def pg_storage(pg_schema_dsn: str) -> Iterator[Storage]:
    """A PostgreSQL storage on a fresh schema (a small pool), closed after the test."""
    storage = open_storage(pg_schema_dsn, max_pool=4)
    yield storage
    storage.close()

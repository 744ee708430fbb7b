"""Storage adapters for replaykit: SQLite (embedded, default) and PostgreSQL (many workers).

>>> storage = open_storage("sqlite:///replaykit.db")
>>> storage = open_storage("postgresql://postgres@127.0.0.1:5432/app")
"""

from __future__ import annotations

from typing import Any

from replaykit.core.errors import InvalidInput
from replaykit.storage import Storage


def open_storage(url: str, *, auto_migrate: bool = True, **options: Any) -> Storage:
    """Open the adapter for ``url`` (``sqlite:///path.db``, ``sqlite://:memory:``,
    ``postgresql://...``) and apply migrations unless ``auto_migrate=False``."""
    storage: Storage
    if url.startswith("sqlite:"):
        from .sqlite import SqliteStorage

        storage = SqliteStorage(url, **options)
    elif url.startswith(("postgresql:", "postgres:")):
        from .postgres import PostgresStorage

        storage = PostgresStorage(url, **options)
    elif url.startswith(("mysql:", "mariadb:")):
        raise InvalidInput("the MySQL/MariaDB adapter is not available yet")
    else:
        raise InvalidInput(
            f"unsupported database URL {url!r}: use sqlite:///path.db or postgresql://..."
        )
    if auto_migrate:
        storage.migrate()
    return storage


__all__ = ["open_storage"]

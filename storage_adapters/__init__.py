"""Storage adapters for replaykit: SQLite (embedded, default), PostgreSQL and MySQL/MariaDB
(many workers).

>>> storage = open_storage("sqlite:///replaykit.db")
>>> storage = open_storage("postgresql://postgres@127.0.0.1:5432/app")
>>> storage = open_storage("mysql://app:secret@127.0.0.1:3306/app")  # needs the `mysql` extra
"""

from __future__ import annotations

from typing import Any

from replaykit.core.errors import InvalidInput, ReplayKitError
from replaykit.storage import Storage

from .migrations import load_migrations


def open_storage(url: str, *, auto_migrate: bool = True, **options: Any) -> Storage:
    """Open the adapter for ``url`` (``sqlite:///path.db``, ``sqlite://:memory:``,
    ``postgresql://...``, ``mysql://...`` or ``mariadb://...``) and apply migrations unless
    ``auto_migrate=False``."""
    storage: Storage
    if url.startswith("sqlite:"):
        from .sqlite import SqliteStorage

        storage = SqliteStorage(url, **options)
    elif url.startswith(("postgresql:", "postgres:")):
        from .postgres import PostgresStorage

        storage = PostgresStorage(url, **options)
    elif url.startswith(("mysql:", "mariadb:")):
        try:
            from .mysql import MysqlStorage
        except ImportError as exc:
            raise InvalidInput(
                f"{url.split(':', 1)[0]}:// URLs need PyMySQL: "
                "pip install 'replaykit-durable[mysql]'"
            ) from exc
        storage = MysqlStorage(url, **options)
    else:
        raise InvalidInput(
            f"unsupported database URL {url!r}: use sqlite:///path.db, postgresql://... "
            "or mysql://..."
        )
    if auto_migrate:
        storage.migrate()
    return storage


def migration_status(storage: Storage) -> list[dict[str, str]]:
    """Every migration shipped with ``storage``'s adapter, ``applied`` or ``pending``."""
    package = getattr(storage, "migrations_package", None)
    if package is None:
        raise ReplayKitError(f"{type(storage).__name__} does not report its migrations")
    done = set(storage.applied_migrations())
    return [
        {
            "version": m.version,
            "name": m.name,
            "state": "applied" if m.version in done else "pending",
        }
        for m in load_migrations(package)
    ]


__all__ = ["migration_status", "open_storage"]

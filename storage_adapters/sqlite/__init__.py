"""SQLite adapter (see :mod:`storage_adapters.sqlite.adapter` for durability notes)."""

from __future__ import annotations

from .adapter import SqliteStorage, parse_sqlite_url

__all__ = ["SqliteStorage", "parse_sqlite_url"]

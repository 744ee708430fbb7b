"""PostgreSQL adapter (see :mod:`storage_adapters.postgres.adapter`)."""

from __future__ import annotations

from .adapter import PostgresStorage

__all__ = ["PostgresStorage"]

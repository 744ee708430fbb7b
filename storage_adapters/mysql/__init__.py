"""MySQL / MariaDB adapter (see :mod:`storage_adapters.mysql.adapter`)."""

from __future__ import annotations

from .adapter import MysqlStorage

__all__ = ["MysqlStorage"]

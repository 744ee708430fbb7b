"""Migrations shipped as package data, in dbmate's file format and ``schema_migrations`` table.

Each adapter keeps ``NNNN_name.sql`` files (``YYYYMMDDHHMMSS_name.sql`` also works) in its
``migrations`` folder with a ``-- migrate:up`` section and an optional ``-- migrate:down``
section, exactly as dbmate writes them, so ``dbmate --migrations-dir ... up`` applies the same
files and records the same versions.
"""

from __future__ import annotations

from importlib import resources

import msgspec


class Migration(msgspec.Struct, frozen=True):
    version: str
    name: str
    up: str
    down: str


def load_migrations(package: str) -> list[Migration]:
    """The migrations in ``package``'s ``migrations`` folder, ordered by version."""
    folder = resources.files(package).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        version, _, rest = entry.name.partition("_")
        up, down = _split(entry.read_text(encoding="utf-8"))
        found.append(Migration(version=version, name=rest.removesuffix(".sql"), up=up, down=down))
    return sorted(found, key=lambda m: m.version)


def _split(text: str) -> tuple[str, str]:
    up_marker, down_marker = "-- migrate:up", "-- migrate:down"
    if up_marker not in text:
        return text, ""
    body = text.split(up_marker, 1)[1]
    up, _, down = body.partition(down_marker)
    return up.strip(), down.strip()


def split_statements(sql: str) -> list[str]:
    """Split a migration into statements on ``;`` at line ends, keeping ``$$``-quoted bodies
    (PostgreSQL functions) whole."""
    parts, current = [], []
    in_body = False
    for line in sql.splitlines():
        current.append(line)
        if line.count("$$") % 2:
            in_body = not in_body
        if not in_body and line.rstrip().endswith(";"):
            statement = "\n".join(current).strip()
            if statement.strip(";").strip():
                parts.append(statement)
            current = []
    tail = "\n".join(current).strip()
    if tail:
        parts.append(tail)
    return parts

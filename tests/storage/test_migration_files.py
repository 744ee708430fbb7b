"""The dbmate-format migration files: parsing and statement splitting (no database needed)."""

from __future__ import annotations

import pytest

from storage_adapters.migrations import load_migrations, split_statements


def test_statements_split_on_semicolons_at_line_ends() -> None:
    sql = "CREATE TABLE a (x int);\nCREATE INDEX a_x\n    ON a (x);\n"
    assert split_statements(sql) == ["CREATE TABLE a (x int);", "CREATE INDEX a_x\n    ON a (x);"]


def test_a_dollar_quoted_function_body_stays_one_statement() -> None:
    sql = (
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\n"
        "BEGIN\n    PERFORM 1;\n    RETURN 2;\nEND\n$$;\n"
        "SELECT f();\n"
    )
    first, second = split_statements(sql)
    assert first.startswith("CREATE FUNCTION") and first.endswith("$$;")
    assert "RETURN 2;" in first
    assert second == "SELECT f();"


@pytest.mark.parametrize(
    "package",
    ["storage_adapters.sqlite", "storage_adapters.postgres", "storage_adapters.mysql"],
)
def test_shipped_migrations_have_up_and_down_sections(package: str) -> None:
    migrations = load_migrations(package)
    versions = [m.version for m in migrations]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert versions[:2] == ["0001", "0002"]
    for migration in migrations:
        assert migration.up and migration.down, migration.name
        assert all(statement.strip() for statement in split_statements(migration.up))

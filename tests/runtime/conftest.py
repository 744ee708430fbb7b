"""Fixtures for runtime tests: one database URL per adapter (SQLite file, PostgreSQL schema,
MySQL database)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from replaykit.core.definitions import Registry
from replaykit.runtime.app import App

from ..storage.conftest import ADAPTERS, SERVER_URLS


@pytest.fixture(params=ADAPTERS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'rk.db'}"
    dsn: str = request.getfixturevalue(SERVER_URLS[request.param])
    return dsn


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def make_app(database_url: str, registry: Registry) -> Iterator[App]:
    apps: list[App] = []

    def make(**kwargs: object) -> App:
        options: dict[str, object] = {"registry": registry, "poll_interval": 0.05}
        options.update(kwargs)
        app = App(database_url, **options)  # type: ignore[arg-type]
        apps.append(app)
        return app

    yield make  # type: ignore[misc]
    for app in apps:
        app.stop()

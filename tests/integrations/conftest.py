"""Fixtures for the integration tests: the runtime's database fixtures, plus SQLite-only ones."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from replaykit.core.definitions import Registry
from replaykit.runtime.app import App
from tests.runtime.conftest import database_url, make_app, registry

__all__ = ["database_url", "make_app", "registry"]

MakeApp = Callable[..., App]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'rk.db'}"


@pytest.fixture
def sqlite_app(sqlite_url: str) -> Iterator[MakeApp]:
    """``make(**kwargs)`` → an App on one SQLite file with a fresh registry; stopped afterwards."""
    apps: list[App] = []
    reg = Registry()

    def make(**kwargs: object) -> App:
        options: dict[str, object] = {"registry": reg, "poll_interval": 0.05}
        options.update(kwargs)
        app = App(sqlite_url, **options)  # type: ignore[arg-type]
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

"""Fixtures for the operations tests: a database with one instance of every kind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from replaykit.runtime.app import App
from tests.runtime.conftest import database_url  # noqa: F401 - the sqlite + postgres fixture

from .workflows import ops_app, populate


@pytest.fixture
def populated(database_url: str) -> Iterator[tuple[App, dict[str, str]]]:  # noqa: F811
    """A running App over ``database_url`` with completed, retried, failed (compensated),
    waiting and recurring instances."""
    app = ops_app(database_url)
    with app:
        yield app, populate(app)

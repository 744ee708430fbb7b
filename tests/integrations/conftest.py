"""Fixtures for the integration tests: the runtime's database fixtures, plus SQLite-only ones."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


@contextlib.contextmanager
def serve_asgi(asgi_app: Any, *, lifespan: str = "off") -> Iterator[str]:
    """Serve ``asgi_app`` with a real uvicorn on a free 127.0.0.1 port; yield its base URL."""
    import socket
    import threading

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        asgi_app,
        host="127.0.0.1",
        port=port,
        lifespan=lifespan,  # type: ignore[arg-type]
        ws="none",
        http="h11",
        loop="asyncio",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        threading.Event().wait(0.01)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        assert not thread.is_alive()

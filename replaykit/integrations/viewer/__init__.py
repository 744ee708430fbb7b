"""A small read-only web viewer of instances and their histories (Starlette + Jinja2).

>>> from replaykit.integrations.viewer import viewer_app
>>> asgi = viewer_app(app)                      # mount it, or: uvicorn.run(asgi)
>>> asgi = viewer_app(app, allow_actions=True)  # also cancel, fork and send events

Needs ``starlette`` (``pip install 'replaykit-durable[http]'``); the helpers in
:mod:`.timeline` do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ...runtime.app import App


def viewer_app(app: App, *, allow_actions: bool = False) -> Starlette:
    """The viewer as an ASGI app over ``app``'s database; actions only with ``allow_actions``."""
    from .server import build_viewer

    return build_viewer(app, allow_actions=allow_actions)


__all__ = ["viewer_app"]

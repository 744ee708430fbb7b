"""Workflows as MCP tools over stdio (docs/integrations/mcp.md).

    python docs/examples/mcp_server.py sqlite:///mcp.db

Tools: ``book_trip_start``, ``book_trip_status``, ``book_trip_result``, ``book_trip_cancel``.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import Any

import msgspec

from replaykit import activity, workflow
from replaykit.integrations.mcp import run_stdio
from replaykit.runtime.app import App


class Trip(msgspec.Struct):
    destination: str
    nights: int


class Booking(msgspec.Struct):
    reference: str
    price: float


@activity
def quote(ctx: Any, destination: str, nights: int) -> float:
    return 80.0 * nights


@workflow
def book_trip(ctx: Any, trip: Trip) -> Generator[Any, Any, Booking]:
    """Book a hotel stay: quotes the price and returns a booking reference."""
    price = yield from quote(trip.destination, trip.nights)
    return Booking(reference=f"{trip.destination[:3].upper()}-{trip.nights}", price=price)


if __name__ == "__main__":
    app = App(sys.argv[1] if len(sys.argv) > 1 else "sqlite:///mcp.db", workflows=[book_trip])
    run_stdio(app, [book_trip], name="trips")

"""What activities see in tests: their ``ctx`` (no database session) and an outbox recorder."""

from __future__ import annotations

from typing import Any


class OutboxRecorder:
    """Collects what activities send through ``ctx.outbox`` in tests."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, event: Any, **_: Any) -> None:
        self.sent.append(event)


class TestActivityContext:
    """The ``ctx`` an activity gets in tests: no session; outbox events are collected in a list."""

    __test__ = False

    def __init__(
        self,
        instance_id: str,
        step: int,
        attempt: int,
        outbox: OutboxRecorder,
        compensating: Any = None,
    ) -> None:
        self.instance_id = instance_id
        self.step = step
        self.attempt = attempt
        self.compensating_result = compensating
        self.session: Any = None
        self.outbox = outbox
        self.heartbeats = 0

    def heartbeat(self) -> None:
        self.heartbeats += 1


__all__ = ["OutboxRecorder", "TestActivityContext"]

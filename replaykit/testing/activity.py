"""What activities see in tests: their ``ctx`` (no database session) and an outbox recorder."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .run import TestRun


class TestActivityContext:
    """The ``ctx`` an activity gets in tests: no session; outbox events are collected in a list."""

    __test__ = False

    def __init__(self, run: TestRun, step: int, attempt: int, compensating: Any = None) -> None:
        self.instance_id = run.instance_id
        self.step = step
        self.attempt = attempt
        self.compensating_result = compensating
        self.session: Any = None
        self.outbox = run.env.outbox
        self.heartbeats = 0

    def heartbeat(self) -> None:
        self.heartbeats += 1


class OutboxRecorder:
    """Collects what activities send through ``ctx.outbox`` in tests."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, event: Any, **_: Any) -> None:
        self.sent.append(event)


__all__ = ["OutboxRecorder", "TestActivityContext"]

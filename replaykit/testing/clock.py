"""The virtual clock of the in-memory test environment: time moves only when the tests move it."""

from __future__ import annotations

DEFAULT_START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class VirtualClock:
    """Time that only moves when the environment advances it."""

    def __init__(self, start: float = DEFAULT_START) -> None:
        self.now = start

    def time(self) -> float:
        return self.now


__all__ = ["DEFAULT_START", "VirtualClock"]

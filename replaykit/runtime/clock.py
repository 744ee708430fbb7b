"""Wall-clock time for the runtime (the pure core never reads a clock)."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """POSIX seconds."""


class SystemClock:
    """The real wall clock."""

    def time(self) -> float:
        return time.time()

"""What varies between runs, for the runtime: wall-clock time, and the values of ``Uuid``,
``Random`` and ``SideEffect`` (the pure core reads no clock and draws no random numbers)."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol


class Clock(Protocol):
    def time(self) -> float:
        """POSIX seconds."""


class SystemClock:
    """The real wall clock."""

    def time(self) -> float:
        return time.time()


class SystemValues:
    """The values of ``Uuid``, ``Random`` and ``SideEffect`` in production (see core.effects)."""

    def uuid(self) -> str:
        return str(uuid.uuid4())

    def random(self) -> float:
        return random.random()

    def side_effect(self, fn: Callable[[], Any]) -> Any:
        return fn()


SYSTEM_VALUES = SystemValues()

"""What varies between runs, for the runtime: wall-clock time, and the values of ``Uuid``,
``Random`` and ``SideEffect`` (the pure core reads no clock and draws no random numbers)."""

from __future__ import annotations

import os
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

_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))  # the version and variant bits
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant


def uuid4_hex() -> str:
    """A random version-4 UUID as 32 hex digits, what ``uuid.uuid4().hex`` gives, without
    building a ``uuid.UUID`` (a new instance's id is drawn on every start).

    >>> len(uuid4_hex()), uuid.UUID(uuid4_hex()).version
    (32, 4)
    """
    value = int.from_bytes(os.urandom(16), "big") & _UUID4_CLEAR | _UUID4_SET
    return f"{value:032x}"


def random_token() -> str:
    """32 random hex digits (a lease token)."""
    return os.urandom(16).hex()

"""Retry policies, decided by the pure core (durable retry timers, no sleeping here)."""

from __future__ import annotations

import msgspec


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How often and how fast a failed activity is tried again.

    >>> policy = RetryPolicy(max_attempts=5, initial_interval=1.0, backoff_coefficient=2.0)
    >>> [policy.delay_before(a) for a in (2, 3, 4)]
    [1.0, 2.0, 4.0]

    ``non_retryable`` lists exception type names (``"ValueError"`` or ``"mod.ValueError"``) that
    fail the activity at once; :class:`~replaykit.TerminalError` never retries.
    """

    max_attempts: int = 3
    initial_interval: float = 1.0
    backoff_coefficient: float = 2.0
    max_interval: float = 300.0
    non_retryable: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.initial_interval < 0 or self.max_interval < 0:
            raise ValueError("RetryPolicy intervals must not be negative")
        if self.backoff_coefficient < 1:
            raise ValueError("RetryPolicy.backoff_coefficient must be at least 1")

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2 = the first retry)."""
        exponent = max(attempt - 2, 0)
        return float(
            min(self.initial_interval * self.backoff_coefficient**exponent, self.max_interval)
        )

    def allows_retry(self, *, attempt: int, type_name: str, retryable: bool) -> bool:
        """Whether a failure of ``attempt`` with error ``type_name`` gets another attempt."""
        if not retryable or attempt >= self.max_attempts:
            return False
        short = type_name.rsplit(".", 1)[-1]
        return not any(name in (type_name, short) for name in self.non_retryable)


DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(max_attempts=1)

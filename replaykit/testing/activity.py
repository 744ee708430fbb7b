"""What activities see in tests: their ``ctx`` (no database session) and an outbox recorder,
and how an attempt is bounded by its ``timeout``: in real time as in production, and in the
virtual time the attempt lets pass (see :func:`run_bounded`)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, wait
from typing import Any

from ..core.errors import ActivityTimeout
from .clock import VirtualClock


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
        self.abandoned = False

    def heartbeat(self) -> None:
        if not self.abandoned:
            self.heartbeats += 1


def run_bounded(
    fn: Callable[[], Any],
    timeout: float | None,
    ctx: TestActivityContext,
    name: str,
    *,
    is_async: bool,
    clock: VirtualClock,
) -> Any:
    """``fn()`` (its coroutine run to the end), bounded by ``timeout`` seconds on two clocks;
    past it the attempt raises :class:`ActivityTimeout`.

    * Real time, as a worker bounds it (the environment cannot skip time while Python code
      runs): a coroutine is cancelled, a sync function abandoned on its thread (its late result
      discarded, its heartbeats ignored).
    * Virtual time: when the attempt moved ``clock`` (``env.clock.now += s``, ``env.advance``)
      by more than ``timeout``, it took longer than its timeout in the workflow's time; its
      outcome is discarded, as a worker discards an abandoned attempt's.
    """

    def expired(how: str) -> ActivityTimeout:
        return ActivityTimeout.of(
            name,
            step=ctx.step,
            attempt=ctx.attempt,
            instance_id=ctx.instance_id,
            timeout=timeout or 0.0,
            how=how,
        )

    if timeout is None:
        result = fn()
        return asyncio.run(result) if asyncio.iscoroutine(result) else result
    began = clock.now
    try:
        result = _in_real_time(fn, timeout, ctx, expired, is_async=is_async)
    except ActivityTimeout:
        raise
    except Exception:
        if clock.now - began <= timeout:
            raise
        result = None  # its error came after its timeout: discarded like a late result
    took = clock.now - began
    if took > timeout:
        ctx.abandoned = True
        raise expired(f"abandoned after {took:g} s of virtual time (its outcome is discarded)")
    return result


def _in_real_time(
    fn: Callable[[], Any],
    timeout: float,
    ctx: TestActivityContext,
    expired: Callable[[str], ActivityTimeout],
    *,
    is_async: bool,
) -> Any:
    future: Future[Any] = Future()

    def attempt() -> None:
        try:
            result = fn()
            if asyncio.iscoroutine(result):
                result = asyncio.run(_cancelled_after(result, timeout, expired))
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)

    threading.Thread(
        target=attempt, name=f"replaykit-test-{ctx.instance_id}-{ctx.step}", daemon=True
    ).start()
    done, _ = wait([future], timeout + 5.0 if is_async else timeout)  # a coroutine is cancelled
    if not done:
        ctx.abandoned = True
        raise expired("abandoned (a sync function cannot be stopped; its result is discarded)")
    return future.result()


async def _cancelled_after(
    coro: Coroutine[Any, Any, Any], timeout: float, expired: Callable[[str], BaseException]
) -> Any:
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            return await coro
    except TimeoutError:
        if deadline.expired():
            raise expired("cancelled") from None
        raise


__all__ = ["OutboxRecorder", "TestActivityContext", "run_bounded"]

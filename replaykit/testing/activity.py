"""What activities see in tests: their ``ctx`` (no database session) and an outbox recorder,
and how an attempt is bounded by its ``timeout`` (as in production, in real time)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, wait
from typing import Any

from ..core.errors import ActivityTimeout


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
) -> Any:
    """``fn()`` (its coroutine run to the end), bounded by ``timeout`` real seconds the way a
    worker bounds it: a coroutine is cancelled, a sync function abandoned on its thread (its
    late result discarded, its heartbeats ignored); both raise :class:`ActivityTimeout`."""

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

    threading.Thread(target=attempt, name=f"replaykit-test-{name}", daemon=True).start()
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

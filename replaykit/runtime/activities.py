"""Running activity bodies: the ``ctx`` they get, async support, and the transactional outbox."""

from __future__ import annotations

import asyncio
import inspect
import threading
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, wait
from datetime import UTC, datetime
from typing import Any

from ..core.codec import to_builtins
from ..core.errors import ActivityTimeout
from ..storage import OutboxSpec


class Outbox:
    """``ctx.outbox``: CloudEvents written in the activity's own transaction.

    >>> ctx.outbox.send({"type": "order.shipped", "source": "/orders", "data": {"id": "o1"}})

    The event commits (or rolls back) with the activity's result; a relay delivers it at least
    once. ``id``, ``specversion`` and ``time`` are filled in when missing.
    """

    def __init__(self, default_source: str) -> None:
        self.default_source = default_source
        self.items: list[OutboxSpec] = []

    def send(self, event: Any, *, destination: str | None = None) -> str:
        """Queue ``event`` (a dict of CloudEvent attributes plus ``data``, or an object with
        ``get_attributes()``/``get_data()`` such as cloudevents' CloudEvent); returns its id."""
        if hasattr(event, "get_attributes"):
            attrs = dict(event.get_attributes())
            attrs["data"] = event.get_data()
        else:
            attrs = dict(to_builtins(event, what="outbox event"))
        if "type" not in attrs:
            raise ValueError("an outbox event needs a 'type'")
        attrs.setdefault("id", uuid.uuid4().hex)
        attrs.setdefault("source", self.default_source)
        attrs.setdefault("specversion", "1.0")
        attrs.setdefault("time", datetime.now(UTC).isoformat())
        attrs = to_builtins(attrs, what="outbox event")
        self.items.append(OutboxSpec(event=attrs, destination=destination))
        return str(attrs["id"])


class RuntimeActivityContext:
    """What an activity receives as ``ctx`` when run by a worker.

    ``session`` is the open database transaction of a transactional activity (a
    ``sqlite_utils.Database`` on SQLite, a ``psycopg.Connection`` on PostgreSQL; ``None`` with
    ``transactional=False``). ``heartbeat()`` extends the instance's lease.
    """

    def __init__(
        self,
        *,
        instance_id: str,
        workflow: str,
        step: int,
        attempt: int,
        heartbeat: Callable[[], None],
        compensating_result: Any = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.workflow = workflow
        self.step = step
        self.attempt = attempt
        self._transaction: Any = None
        self._outbox = outbox  # made on first use when not given
        self.compensating_result = compensating_result
        self._heartbeat = heartbeat
        #: set when the attempt was abandoned (its timeout or the instance's deadline came
        #: first): its heartbeat no longer counts, its outcome is discarded
        self.abandoned = False

    @property
    def outbox(self) -> Outbox:
        """CloudEvents that commit with this activity's result (made on first use)."""
        if self._outbox is None:
            self._outbox = Outbox(f"replaykit/{self.workflow}/{self.instance_id}")
        return self._outbox

    def outbox_items(self) -> list[OutboxSpec]:
        """What the activity sent through :attr:`outbox` (none if it never used it)."""
        return [] if self._outbox is None else list(self._outbox.items)

    @property
    def session(self) -> Any:
        """The activity's database transaction (begun on first use; see ``Storage.transaction``)."""
        if self.abandoned:
            raise ActivityTimeout(
                f"activity step {self.step} of {self.instance_id!r} ran past its timeout and was "
                "abandoned: it may not use ctx.session any more"
            )
        return None if self._transaction is None else self._transaction.session

    def bind(self, transaction: Any) -> None:
        """Attach the adapter's transaction; its ``session`` is fetched only when used."""
        self._transaction = transaction

    def heartbeat(self) -> None:
        if not self.abandoned:  # an abandoned attempt keeps no lease alive
            self._heartbeat()


class AsyncRunner:
    """One background event loop thread on which async activities run."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(
        self,
        coro: Coroutine[Any, Any, Any],
        timeout: float | None = None,
        expired: Callable[[], BaseException] | None = None,
    ) -> Any:
        """Run ``coro`` on the loop; past ``timeout`` s it is cancelled and ``expired()`` raised."""
        if timeout is not None:
            coro = _bounded(coro, timeout, expired or TimeoutError)
        return asyncio.run_coroutine_threadsafe(coro, self._ensure()).result()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="replaykit-async", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()


class Abandoned(Exception):
    """An activity attempt was given up (the instance's deadline came first): nothing of it is
    recorded; an async activity was cancelled, a sync one runs on in its thread, unheeded."""


async def _bounded(
    coro: Coroutine[Any, Any, Any], timeout: float, expired: Callable[[], BaseException]
) -> Any:
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            return await coro
    except TimeoutError:
        if deadline.expired():  # ours, not a TimeoutError raised by the activity itself
            raise expired() from None
        raise


def invoke(
    fn: Callable[..., Any],
    takes_ctx: bool,
    ctx: RuntimeActivityContext | None,
    call: Any,
    runner: AsyncRunner,
    *,
    limit: float | None = None,
    on_abandon: Callable[[Future[Any]], None] = lambda future: None,
) -> Any:
    """Call an activity function (sync or async) with its arguments; return its raw result.

    An attempt is bounded by ``call.timeout`` (raising :class:`ActivityTimeout`) and by
    ``limit``, the seconds left until the instance's deadline (raising :class:`Abandoned`),
    whichever comes first. At the bound a coroutine is cancelled; a sync function runs on a
    thread of its own and is *abandoned* (it cannot be stopped: ``ctx.abandoned`` is set, its
    heartbeats stop, its result is discarded, and ``on_abandon(future)`` lets the caller finish
    what the thread still holds when it ends). ``ctx`` may be None only for an unbounded call
    of a function that does not take it.
    """
    args = (ctx, *call.args) if takes_ctx else call.args
    timeout: float | None = call.timeout
    if timeout is None and limit is None:
        result = fn(*args, **call.kwargs)
        return runner.run(result) if asyncio.iscoroutine(result) else result
    assert ctx is not None
    bounds = [b for b in (timeout, limit) if b is not None]
    bound = min(bounds)
    by_timeout = timeout is not None and bound == timeout

    def expired(how: str) -> BaseException:
        if not by_timeout:
            return Abandoned(f"given up after {bound:.3f} s")
        return ActivityTimeout.of(
            call.name,
            step=ctx.step,
            attempt=ctx.attempt,
            instance_id=ctx.instance_id,
            timeout=bound,
            how=how,
        )

    if inspect.iscoroutinefunction(fn):
        return runner.run(fn(*args, **call.kwargs), bound, lambda: expired("cancelled"))
    future: Future[Any] = Future()

    def attempt() -> None:
        try:
            result = fn(*args, **call.kwargs)
            if asyncio.iscoroutine(result):
                result = runner.run(result)
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)

    name = f"replaykit-activity-{call.name}"
    threading.Thread(target=attempt, name=name, daemon=True).start()
    done, _ = wait([future], bound)
    if not done:
        ctx.abandoned = True
        on_abandon(future)
        raise expired("abandoned (a sync function cannot be stopped; its result is discarded)")
    return future.result()

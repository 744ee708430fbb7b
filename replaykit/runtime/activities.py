"""Running activity bodies: the ``ctx`` they get, async support, and the transactional outbox."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from ..core.codec import to_builtins
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
        outbox: Outbox,
        heartbeat: Callable[[], None],
        compensating_result: Any = None,
    ) -> None:
        self.instance_id = instance_id
        self.workflow = workflow
        self.step = step
        self.attempt = attempt
        self._transaction: Any = None
        self.outbox = outbox
        self.compensating_result = compensating_result
        self._heartbeat = heartbeat
        self.abandoned = False  # given up at the deadline: its heartbeat no longer counts

    @property
    def session(self) -> Any:
        """The activity's database transaction (begun on first use; see ``Storage.transaction``)."""
        return None if self._transaction is None else self._transaction.session

    def bind(self, transaction: Any) -> None:
        """Attach the adapter's transaction; its ``session`` is fetched only when used."""
        self._transaction = transaction

    def heartbeat(self) -> None:
        if not self.abandoned:
            self._heartbeat()


class AsyncRunner:
    """One background event loop thread on which async activities run."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, coro: Coroutine[Any, Any, Any], limit: float | None = None) -> Any:
        """Run ``coro`` on the loop; with ``limit`` (seconds), cancel it and raise
        :class:`Abandoned` when it has not finished by then."""
        future = asyncio.run_coroutine_threadsafe(coro, self._ensure())
        try:
            return future.result(limit)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise Abandoned(f"given up after {limit:.3f} s") from None

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


def invoke(
    fn: Callable[..., Any],
    takes_ctx: bool,
    ctx: Any,
    call: Any,
    runner: AsyncRunner,
    *,
    limit: float | None = None,
) -> Any:
    """Call an activity function (sync or async) with its arguments; return its raw result.

    With ``limit`` (seconds), an attempt that has not ended by then raises :class:`Abandoned`:
    an async activity is cancelled, a sync one is left to finish in a thread of its own, and its
    outcome is discarded."""
    args = (ctx, *call.args) if takes_ctx else tuple(call.args)
    if limit is not None and not inspect.iscoroutinefunction(fn):
        return _within(limit, fn, args, call.kwargs, runner)
    result = fn(*args, **call.kwargs)
    if asyncio.iscoroutine(result):
        result = runner.run(result, limit)
    return result


def _within(
    limit: float, fn: Callable[..., Any], args: Any, kwargs: Any, runner: AsyncRunner
) -> Any:
    """Run a sync activity in a thread of its own and wait for it at most ``limit`` seconds."""
    outcome: list[Any] = []

    def attempt() -> None:
        try:
            outcome.append((True, fn(*args, **kwargs)))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append((False, exc))

    thread = threading.Thread(target=attempt, name="replaykit-activity", daemon=True)
    thread.start()
    thread.join(limit)
    if not outcome:
        raise Abandoned(f"given up after {limit:.3f} s")
    ok, value = outcome[0]
    if not ok:
        raise value
    if asyncio.iscoroutine(value):
        return runner.run(value, limit)
    return value

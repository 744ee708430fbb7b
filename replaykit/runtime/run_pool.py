"""The threads a worker runs instances on: a call handed to an idle thread, with nothing else.

``concurrent.futures.ThreadPoolExecutor`` makes a ``Future`` (with its own ``Condition``) and a
work item for every call, and completes the future when the call returns; the worker never
reads that future, and the hand-off is on the path of every started instance. This pool only
queues the call: an idle thread takes it, or a new thread is started while fewer than ``size``
exist. Calls run in the order they were submitted, and one that raises is logged, never lost
silently in a future nobody reads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

log = logging.getLogger("replaykit.worker")


class RunPool:
    """Up to ``size`` threads named ``{name}_{n}``, started on demand, that run submitted calls.

    >>> pool = RunPool(2, "example")
    >>> done = threading.Event()
    >>> pool.submit(done.set)
    >>> done.wait(5)
    True
    >>> pool.shutdown()
    """

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self.name = name
        self._calls: SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for a call that no queued call is promised to yet
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on a pool thread. RuntimeError after :meth:`shutdown`."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the pool is shut down")
            self._calls.put((fn, args))
            if self._idle:
                self._idle -= 1
                return
            if len(self._threads) >= self.size:
                return  # every thread is busy: the next one to finish takes it
            thread = threading.Thread(
                target=self._loop, name=f"{self.name}_{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
        thread.start()

    def shutdown(self, timeout: float | None = None) -> None:
        """Let the queued and running calls finish, then end the threads (waiting for each at
        most ``timeout`` seconds when given)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._calls.put(None)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    def _loop(self) -> None:
        calls = self._calls
        while True:
            call = calls.get()
            if call is None:
                return
            fn, args = call
            try:
                fn(*args)
            except BaseException:  # a call's failure must not end the thread
                log.exception("a call on %s failed", threading.current_thread().name)
            with self._lock:
                self._idle += 1

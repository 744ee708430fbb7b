"""The outbox relay: delivers events that activities wrote with ``ctx.outbox.send``.

Delivery is at least once, with exponential backoff, to a Python callable or to an HTTP endpoint
as a CloudEvent (binary or structured content mode, built with the ``cloudevents`` package and
sent with ``httpx``). Any number of relays may run against one database: each claims rows under
a short lease, so no row is delivered by two relays at once.

>>> relay = OutboxRelay(storage, "https://example.com/events", mode="binary")
>>> relay.run_once()           # or App(outbox_delivery=...) runs it in the background
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import httpx
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from ..core.errors import ReplayKitError
from ..storage import OutboxRecord, Storage
from .clock import Clock, SystemClock

log = logging.getLogger("replaykit.outbox")

Deliver = Callable[[dict[str, Any]], Any]


def to_cloudevent(event: dict[str, Any]) -> CloudEvent:
    """Build a CloudEvent from stored attributes plus ``data``."""
    attrs = {k: v for k, v in event.items() if k != "data"}
    if isinstance(attrs.get("time"), str):
        attrs["time"] = datetime.fromisoformat(attrs["time"])
    attrs.setdefault("datacontenttype", "application/json")
    return CloudEvent(attrs, event.get("data"))


class HttpDelivery:
    """POST each event to ``url`` as a CloudEvent; any 2xx answer counts as delivered."""

    def __init__(
        self,
        url: str,
        *,
        mode: Literal["binary", "structured"] = "binary",
        timeout: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url
        self.mode = mode
        self._client = client or httpx.Client(timeout=timeout)
        self._owns_client = client is None

    def __call__(self, event: dict[str, Any]) -> None:
        ce = to_cloudevent(event)
        fmt = JSONFormat()
        message = (
            ce_http.to_binary(ce, fmt) if self.mode == "binary" else ce_http.to_structured(ce, fmt)
        )
        response = self._client.post(self.url, content=message.body, headers=dict(message.headers))
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"{self.url} answered {response.status_code}: {response.text[:200]}")

    def close(self) -> None:
        if self._owns_client:
            self._client.close()


class OutboxRelay:
    """Claims due outbox rows and delivers them; see the module docstring."""

    def __init__(
        self,
        storage: Storage,
        deliver: Deliver | str,
        *,
        mode: Literal["binary", "structured"] = "binary",
        batch_size: int = 50,
        max_attempts: int = 20,
        initial_backoff: float = 1.0,
        max_backoff: float = 300.0,
        poll_interval: float = 1.0,
        claim_seconds: float = 60.0,
        clock: Clock | None = None,
        owner: str | None = None,
    ) -> None:
        self.storage = storage
        self.deliver: Deliver = (
            HttpDelivery(deliver, mode=mode) if isinstance(deliver, str) else deliver
        )
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.poll_interval = poll_interval
        self.claim_seconds = claim_seconds
        self.clock = clock or SystemClock()
        self.owner = owner or f"relay-{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def backoff(self, attempts: int) -> float:
        """Seconds before the next try after ``attempts`` failed tries."""
        return float(min(self.initial_backoff * 2 ** max(attempts - 1, 0), self.max_backoff))

    def run_once(self) -> int:
        """Deliver one batch of due rows; return how many were delivered."""
        now = self.clock.time()
        rows = self.storage.claim_outbox(
            self.owner, limit=self.batch_size, now=now, lease_seconds=self.claim_seconds
        )
        return sum(self._deliver_one(row) for row in rows)

    def _deliver_one(self, row: OutboxRecord) -> bool:
        try:
            self.deliver(row.event)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            retry_at = None
            if row.attempts < self.max_attempts:
                retry_at = self.clock.time() + self.backoff(row.attempts)
            log.warning("outbox %s delivery attempt %s failed: %s", row.id, row.attempts, error)
            self.storage.finish_outbox(
                row.id, delivered=False, error=error, next_attempt_at=retry_at
            )
            return False
        self.storage.finish_outbox(row.id, delivered=True, error=None, next_attempt_at=None)
        return True

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="replaykit-outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        close = getattr(self.deliver, "close", None)
        if callable(close):
            close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                delivered = self.run_once()
            except ReplayKitError:
                log.exception("outbox relay failed to claim rows")
                delivered = 0
            if delivered < self.batch_size:
                self._wake.wait(self.poll_interval)


__all__ = ["HttpDelivery", "OutboxRelay", "to_cloudevent"]

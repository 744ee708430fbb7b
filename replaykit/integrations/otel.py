"""OpenTelemetry spans for workflows and activities (``pip install 'replaykit-durable[otel]'``).

>>> from replaykit.integrations.otel import OpenTelemetryHooks
>>> app = App("postgresql://...", workflows=[order], hooks=[OpenTelemetryHooks()])

Spans:

* ``activity {name}``: one per attempt of an activity or compensation, from start to result;
  a failed attempt has status ERROR and the exception recorded.
* ``workflow {name}``: one per instance, emitted when it ends (completed, failed, cancelled).
  It starts when this process first saw the instance (started or resumed).
* ``workflow {name} resumed``: a short span each time a worker replays the instance to carry
  on (after a wait, a restart or a takeover), with the history length.

**Linking across resumes: a deterministic trace id.** An instance may run for days, on several
workers, across restarts; nothing in memory lives that long, and the history has no place to keep
a span context. So the trace id is derived from the instance id (the first 16 bytes of
``sha256("replaykit:" + instance_id)``), and every span of the instance, on any worker, hangs
under one virtual parent span whose id is derived the same way (that parent is never exported).
All spans of an instance therefore land in one trace, found by :func:`trace_id_for`, without any
state shared between workers. Span links were the alternative; they need the previous span's
context stored somewhere, which would have meant a schema change for tracing alone.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from collections import OrderedDict
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
    TracerProvider,
)

TRACER_NAME = "replaykit"


@functools.lru_cache(maxsize=4096)
def _digest(instance_id: str) -> bytes:
    return hashlib.sha256(f"replaykit:{instance_id}".encode()).digest()


def trace_id_for(instance_id: str) -> int:
    """The trace id (128-bit int) of every span of ``instance_id``."""
    return int.from_bytes(_digest(instance_id)[:16], "big") or 1


def root_span_id_for(instance_id: str) -> int:
    """The id of the virtual parent span of ``instance_id``'s spans (never exported)."""
    return int.from_bytes(_digest(instance_id)[16:24], "big") or 1


def instance_context(instance_id: str) -> Context:
    """An OpenTelemetry context whose current span is the instance's virtual parent span."""
    parent = SpanContext(
        trace_id=trace_id_for(instance_id),
        span_id=root_span_id_for(instance_id),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(NonRecordingSpan(parent))


class OpenTelemetryHooks:
    """Lifecycle hooks that create spans (see the module docstring)."""

    def __init__(
        self, tracer_provider: TracerProvider | None = None, *, max_instances: int = 10_000
    ) -> None:
        self.tracer: Tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)
        self._lock = threading.Lock()
        self._activities: dict[tuple[str, int, int], Span] = {}
        self._first_seen: OrderedDict[str, int] = OrderedDict()
        self._max = max_instances

    # -- workflows ----------------------------------------------------------------------------

    def _seen(self, instance_id: str) -> None:
        with self._lock:
            self._first_seen.setdefault(instance_id, time.time_ns())
            while len(self._first_seen) > self._max:
                self._first_seen.popitem(last=False)

    def workflow_started(self, instance_id: str, workflow: str) -> None:
        self._seen(instance_id)

    def workflow_resumed(self, instance_id: str, workflow: str, history_len: int) -> None:
        self._seen(instance_id)
        span = self.tracer.start_span(
            f"workflow {workflow} resumed",
            context=instance_context(instance_id),
            attributes={**_attrs(instance_id, workflow), "replaykit.history_len": history_len},
        )
        span.end()

    def _finish(self, instance_id: str, workflow: str, outcome: str, error: Any = None) -> None:
        with self._lock:
            start = self._first_seen.pop(instance_id, None)
        span = self.tracer.start_span(
            f"workflow {workflow}",
            context=instance_context(instance_id),
            kind=SpanKind.INTERNAL,
            start_time=start,
            attributes={**_attrs(instance_id, workflow), "replaykit.outcome": outcome},
        )
        if outcome == "failed":
            message = f"{getattr(error, 'type', '')}: {getattr(error, 'message', error)}"
            span.set_status(Status(StatusCode.ERROR, message))
        span.end()

    def workflow_completed(self, instance_id: str, workflow: str) -> None:
        self._finish(instance_id, workflow, "completed")

    def workflow_failed(self, instance_id: str, workflow: str, error: Any) -> None:
        self._finish(instance_id, workflow, "failed", error)

    def workflow_cancelled(self, instance_id: str, workflow: str) -> None:
        self._finish(instance_id, workflow, "cancelled")

    # -- activities -----------------------------------------------------------------------------

    def activity_started(self, instance_id: str, step: int, name: str, attempt: int) -> None:
        span = self.tracer.start_span(
            f"activity {name}",
            context=instance_context(instance_id),
            attributes={
                **_attrs(instance_id),
                "replaykit.step": step,
                "replaykit.activity": name,
                "replaykit.attempt": attempt,
            },
        )
        with self._lock:
            self._activities[(instance_id, step, attempt)] = span

    def _end_activity(
        self, instance_id: str, step: int, attempt: int | None, error: BaseException | None = None
    ) -> None:
        with self._lock:
            if attempt is None:  # compensated() does not say which attempt: take the latest
                keys = [k for k in self._activities if k[0] == instance_id and k[1] == step]
                key = max(keys, default=None)
            else:
                key = (instance_id, step, attempt)
            span = self._activities.pop(key, None) if key is not None else None
        if span is None:
            return
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end()

    def activity_completed(
        self, instance_id: str, step: int, name: str, attempt: int, duration: float
    ) -> None:
        self._end_activity(instance_id, step, attempt)

    def activity_failed(
        self, instance_id: str, step: int, name: str, attempt: int, error: BaseException
    ) -> None:
        self._end_activity(instance_id, step, attempt, error)

    def compensated(self, instance_id: str, step: int, name: str, ok: bool) -> None:
        self._end_activity(instance_id, step, None)


def _attrs(instance_id: str, workflow: str | None = None) -> dict[str, str]:
    attrs = {"replaykit.instance_id": instance_id}
    if workflow:
        attrs["replaykit.workflow"] = workflow
    return attrs


__all__ = [
    "OpenTelemetryHooks",
    "instance_context",
    "root_span_id_for",
    "trace_id_for",
]

"""CloudEvents intake: an ASGI app (Starlette) that stores CloudEvents as replaykit events.

>>> api = cloudevents_app(app)                     # POST / ; serve it on its own
>>> uvicorn.run(api, port=8080)
>>> web.router.routes.extend(cloudevents_routes(app, "/events"))  # or in a Starlette/FastAPI app:
>>>                                                # POST /events and /events/

Accepts CloudEvents 1.0 in *structured* mode (``Content-Type: application/cloudevents+json``),
*binary* mode (``ce-*`` headers, the body is the data) and *batch* mode
(``application/cloudevents-batch+json``, a JSON array of structured events). Answers:

* ``202`` once every event is durably stored (``App.send_event`` returns after its commit);
  a duplicate ``(source, id)`` is accepted again and stored once (``"duplicate": true``).
* ``400`` (do not retry) for anything that is not a valid CloudEvent, with a JSON body saying what
  was wrong; ``404`` when the event targets an instance that does not exist.
* ``413`` past ``max_body`` bytes (default 1 MiB; checked on ``Content-Length`` and while reading).
* ``500`` (retry) when storing fails.

An event wakes the instances waiting for its ``type`` (``WaitEvent(type, match={...})`` matches
data keys). The extension attribute ``replaykitinstanceid`` (header ``ce-replaykitinstanceid``)
sends it to that one instance only. ``App.on_event(type, workflow, ...)`` (or ``handlers=``)
starts a workflow per event, with an instance id made from the event (default
``"{type}:{source}:{id}"``), so a redelivered event never starts a second instance.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import msgspec
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..core.errors import InvalidInput, ReplayKitError, UnknownWorkflow, WorkflowNotFound
from ..core.history import EventData
from ..core.validation import check_event, check_json, check_text
from ..runtime.app import App
from ..runtime.intake import StartOn, provide_intake

log = logging.getLogger("replaykit.http")

DEFAULT_MAX_BODY = 1024 * 1024
TARGET_EXTENSION = "replaykitinstanceid"
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
REQUIRED = ("specversion", "id", "source", "type")
_FORMAT = JSONFormat()
_JSON_DATA = JSONFormat.JSON_CONTENT_TYPE_PATTERN


class BadEvent(ReplayKitError, ValueError):
    """The request is not a valid CloudEvent (answered with 400)."""


class TooLarge(ReplayKitError, ValueError):
    """The request body is larger than the configured limit (answered with 413)."""


# ---------------------------------------------------------------------------------- parsing


def parse_events(headers: Mapping[str, str], body: bytes) -> list[EventData]:
    """Parse one HTTP request into events (one, or several in batch mode); raises BadEvent."""
    lowered = {k.lower(): v for k, v in headers.items()}
    content_type = lowered.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if any(k.startswith("ce-") for k in lowered):
        return [_binary(lowered, body)]
    if media == STRUCTURED:
        return [_structured(_json_body(body))]
    if media == BATCH:
        items = _json_body(body)
        if not isinstance(items, list):
            raise BadEvent("a CloudEvents batch must be a JSON array of events")
        return [_structured(item, where=f"event {i}: ") for i, item in enumerate(items)]
    raise BadEvent(
        f"not a CloudEvent: content type {content_type or '(none)'!r} without ce-* headers; "
        f"send {STRUCTURED}, {BATCH}, or binary mode with ce-specversion/ce-id/ce-source/ce-type"
    )


def _json_body(body: bytes) -> Any:
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise BadEvent(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadEvent("the body is JSON nested too deep") from None


def _check_values(attrs: dict[str, Any], where: str) -> None:
    """Refuse NUL, lone surrogates and nesting past MAX_DEPTH in any attribute (and the data)
    before the SDK parses them again (its ``json`` would overflow the stack on deep nesting)."""
    try:
        for name, value in attrs.items():
            check_text(name, "an attribute name")
            check_json(value, "data" if name == "data" else name)
    except InvalidInput as exc:
        raise BadEvent(f"{where}{exc}") from None


def _structured(attrs: Any, *, where: str = "") -> EventData:
    if not isinstance(attrs, dict):
        raise BadEvent(f"{where}a structured CloudEvent must be a JSON object")
    _check_required(attrs, where)
    _check_values(attrs, where)
    body = msgspec.json.encode(attrs)
    message = ce_http.HTTPMessage(headers={"content-type": STRUCTURED}, body=body)
    return _to_event_data(_parse(message, where), where)


def _binary(headers: dict[str, str], body: bytes) -> EventData:
    attrs = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
    _check_required(attrs, "")
    content_type = headers.get("content-type")
    _check_values(attrs, "")
    if body and _JSON_DATA.match(content_type or "application/json"):
        # the SDK would silently keep bad JSON as a string
        _check_values({"data": _json_body(body)}, "")
    message = ce_http.HTTPMessage(headers=headers, body=body)
    return _to_event_data(_parse(message, ""), "")


def _check_required(attrs: dict[str, Any], where: str) -> None:
    missing = [name for name in REQUIRED if not attrs.get(name)]
    if missing:
        raise BadEvent(f"{where}missing required CloudEvents attribute(s): {', '.join(missing)}")
    bad = [name for name in REQUIRED if not isinstance(attrs[name], str)]
    if bad:
        raise BadEvent(f"{where}attribute(s) must be strings: {', '.join(bad)}")
    if attrs["specversion"] != "1.0":
        raise BadEvent(f"{where}unsupported specversion {attrs['specversion']!r}; expected '1.0'")


def _parse(message: ce_http.HTTPMessage, where: str) -> BaseCloudEvent:
    try:
        return ce_http.from_http(message, _FORMAT)
    except (BaseCloudEventException, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise BadEvent(f"{where}invalid CloudEvent: {exc}") from None
    except RecursionError:
        raise BadEvent(f"{where}invalid CloudEvent: nested too deep") from None


def _to_event_data(event: BaseCloudEvent, where: str) -> EventData:
    attrs = event.get_attributes()
    time = attrs.get("time")
    core = {*REQUIRED, "subject", "time", "datacontenttype", "dataschema"}
    extensions = {k: v for k, v in attrs.items() if k not in core and v is not None}
    if isinstance(time, datetime):
        extensions["time"] = time.isoformat()
    for key in ("datacontenttype", "dataschema"):
        if attrs.get(key) is not None:
            extensions[key] = str(attrs[key])
    try:
        data = msgspec.to_builtins(event.get_data())
        extensions = msgspec.to_builtins(extensions)
    except (TypeError, msgspec.EncodeError) as exc:
        raise BadEvent(f"{where}event cannot be stored as JSON: {exc}") from None
    return EventData(
        type=str(attrs["type"]),
        data=data,
        id=str(attrs["id"]),
        source=str(attrs["source"]),
        subject=attrs.get("subject"),
        time=extensions.get("time"),
        extensions=extensions,
    )


# ---------------------------------------------------------------------------------- storing


def _handlers_for(app: App, extra: Iterable[StartOn], type: str) -> list[StartOn]:
    return [h for h in (*app.event_handlers, *extra) if h.type == type]


def deliver(app: App, events: list[EventData], handlers: Iterable[StartOn] = ()) -> list[bool]:
    """Store ``events`` (and start their handlers' workflows); True per newly stored event.

    Every event, and every handler's input and instance id, is checked before anything is
    stored (InvalidInput/UnknownWorkflow), and a target instance must exist (WorkflowNotFound).
    A batch (several events) is stored in one transaction: all or nothing.
    """
    handlers = list(handlers)
    registry = app.registry
    targets = [_target(ev) for ev in events]
    for ev, target in zip(events, targets, strict=True):
        check_event(ev, target)
    plans = [
        [h.prepare(registry, ev) for h in _handlers_for(app, handlers, ev.type)] for ev in events
    ]
    if len(events) > 1:
        return app.send_events(events, targets=targets, starts=plans)
    stored = []
    for ev, target, starts in zip(events, targets, plans, strict=True):
        stored.append(
            app.send_event(
                ev.type,
                ev.data,
                instance_id=target,
                source=ev.source,
                id=ev.id,
                subject=ev.subject,
                time=ev.time,
                extensions=ev.extensions,
            )
        )
        for wf, value, instance_id in starts:
            app.start_workflow(wf, value, instance_id=instance_id)
    return stored


def _target(event: EventData) -> str | None:
    target = event.extensions.get(TARGET_EXTENSION)
    return None if target is None else str(target)


class _Intake:
    def __init__(self, app: App, max_body: int, handlers: Iterable[StartOn]) -> None:
        self.app = app
        self.max_body = max_body
        self.handlers = list(handlers)

    async def handle(self, request: Request) -> JSONResponse:
        try:
            body = await self._read(request)
            events = parse_events(request.headers, body)
            stored = await asyncio.to_thread(deliver, self.app, events, self.handlers)
        except TooLarge as exc:
            return _error(413, "too_large", str(exc))
        except (BadEvent, InvalidInput, UnknownWorkflow) as exc:
            return _error(400, "invalid", str(exc))
        except WorkflowNotFound as exc:
            return _error(404, "not_found", str(exc))
        except ClientDisconnect:
            return _error(400, "incomplete", "the client disconnected before the body was read")
        except Exception:
            log.exception("storing a CloudEvent failed")
            return _error(500, "internal", "the event could not be stored; retry later")
        ids = [
            {"source": e.source, "id": e.id, "duplicate": not new}
            for e, new in zip(events, stored, strict=True)
        ]
        if len(ids) == 1:
            return JSONResponse({"accepted": True, **ids[0]}, status_code=202)
        return JSONResponse({"accepted": True, "events": ids}, status_code=202)

    async def _read(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_body:
            raise TooLarge(f"the body is {declared} bytes; the limit is {self.max_body}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise TooLarge(f"the body exceeds the limit of {self.max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def cloudevents_app(
    app: App,
    *,
    path: str = "/",
    max_body: int = DEFAULT_MAX_BODY,
    handlers: Iterable[StartOn] = (),
) -> Starlette:
    """The CloudEvents intake for ``app`` as a Starlette (ASGI) app answering POST at ``path``.

    Mount it under any prefix (``Mount("/events", cloudevents_app(app))``) or serve it with
    uvicorn. ``handlers`` add to those registered with ``App.on_event``.
    """
    return Starlette(routes=cloudevents_routes(app, path, max_body=max_body, handlers=handlers))


def cloudevents_routes(
    app: App,
    path: str = "/events",
    *,
    max_body: int = DEFAULT_MAX_BODY,
    handlers: Iterable[StartOn] = (),
) -> list[Route]:
    """The intake as routes answering POST at ``path`` both with and without a trailing slash.

    Add them to any Starlette or FastAPI app: ``Starlette(routes=[*cloudevents_routes(app)])``,
    ``web.router.routes.extend(cloudevents_routes(app))``. (A ``Mount("/events", ...)`` answers
    only ``/events/``: Starlette redirects ``POST /events`` there with a 307.)
    """
    intake = _Intake(app, max_body, handlers)
    bare = "/" + path.strip("/")
    paths = [bare] if bare == "/" else [bare, bare + "/"]
    return [Route(p, intake.handle, methods=["POST"]) for p in paths]


provide_intake(cloudevents_app)  # what App.asgi() builds


__all__ = [
    "BATCH",
    "DEFAULT_MAX_BODY",
    "STRUCTURED",
    "TARGET_EXTENSION",
    "BadEvent",
    "StartOn",
    "TooLarge",
    "cloudevents_app",
    "cloudevents_routes",
    "deliver",
    "parse_events",
]

"""The viewer's routes: instance list (filters, paging), instance page (timeline, runs), schedules
(next fire times), queues (depth, running, limits), actions.

Pages are rendered on the server from Jinja2 templates shipped in ``templates/``; there is no
JavaScript. Every database call is one paged query through the App's public queries, so the list
stays fast with hundreds of thousands of instances (no COUNT over the table: a page asks for one
row more than it shows to know whether an older page exists).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from ...core.errors import ReplayKitError, ScheduleNotFound, WorkflowNotFound
from ...core.schedules import upcoming
from ...runtime.app import App
from ...storage import INSTANCE_STATUSES, TERMINAL_STATUSES
from .timeline import age, compact, error_of, human_seconds, timeline, when

STATUSES = INSTANCE_STATUSES
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("replaykit.integrations.viewer", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, age=age, seconds=human_seconds, compact=compact)
    env.filters["pretty"] = lambda v: json.dumps(v, indent=2, default=str, ensure_ascii=False)
    return env


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(value or default)))
    except ValueError:
        return default


class Viewer:
    def __init__(self, app: App, *, allow_actions: bool) -> None:
        self.app = app
        self.allow_actions = allow_actions
        self.env = _environment()

    def render(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        html = self.env.get_template(template).render(
            allow_actions=self.allow_actions,
            statuses=STATUSES,
            root=request.scope.get("root_path", "").rstrip("/"),
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    # -- pages (sync: Starlette runs them in its thread pool; storage calls block) -----------

    def instances(self, request: Request) -> Response:
        q = request.query_params
        workflow = q.get("workflow") or None
        status = q.get("status") or None
        page = _int(q.get("page"), 1, 1, 1_000_000)
        size = _int(q.get("size"), PAGE_SIZE, 1, MAX_PAGE_SIZE)
        rows = self.app.list_instances(
            workflow=workflow, status=status, limit=size + 1, offset=(page - 1) * size
        )

        def link(p: int) -> str:
            params = {"workflow": workflow or "", "status": status or "", "page": p}
            if size != PAGE_SIZE:
                params["size"] = size
            return "?" + urlencode({k: v for k, v in params.items() if v})

        return self.render(
            request,
            "list.html",
            rows=rows[:size],
            workflow=workflow or "",
            status=status or "",
            workflows=sorted(self.app.registry.workflows),
            page=page,
            newer=link(page - 1) if page > 1 else None,
            older=link(page + 1) if len(rows) > size else None,
            flash=q.get("flash", ""),
        )

    def instance(self, request: Request) -> Response:
        instance_id = request.path_params["instance_id"]
        record = self.app.get_instance(instance_id)
        if record is None:
            return self.render(request, "missing.html", 404, instance_id=instance_id)
        run = _int(request.query_params.get("run"), record.run, 1, record.run)
        events = self.app.history(instance_id, run=run)
        rows = timeline(events)
        total = max((rows[-1].offset if rows else 0.0), 1e-6)
        bars = [
            {
                "left": 100.0 * (r.offset - (r.duration or 0.0)) / total,
                "width": max(0.6, 100.0 * (r.duration or 0.0) / total),
            }
            for r in rows
        ]
        return self.render(
            request,
            "instance.html",
            record=record,
            run=run,
            runs=list(range(1, record.run + 1)),
            rows=list(zip(rows, bars, strict=True)),
            total=total if rows else 0.0,
            error=error_of(record),
            terminal=record.status in TERMINAL_STATUSES,
            flash=request.query_params.get("flash", ""),
        )

    def schedules(self, request: Request) -> Response:
        rows = [(s, upcoming(s, 3)) for s in self.app.list_schedules()]
        flash = request.query_params.get("flash", "")
        return self.render(request, "schedules.html", rows=rows, flash=flash)

    def queues(self, request: Request) -> Response:
        """Every declared queue: how many instances wait in it and run, and its limits."""
        return self.render(request, "queues.html", queues=self.app.queue_stats())

    # -- actions (only mounted with allow_actions) -------------------------------------------

    async def schedule_action(self, request: Request) -> Response:
        form = await self._form(request)
        schedule_id, action = form.get("schedule_id", ""), request.path_params["action"]
        calls = {
            "pause": self.app.pause_schedule,
            "resume": self.app.resume_schedule,
            "trigger": self.app.trigger_schedule,
        }
        try:
            if action == "delete":
                if not await run_in_threadpool(self.app.delete_schedule, schedule_id):
                    raise ScheduleNotFound(schedule_id)
            elif action in calls:
                await run_in_threadpool(calls[action], schedule_id)
            else:
                return PlainTextResponse(f"unknown action {action!r}", status_code=404)
        except ScheduleNotFound:
            return PlainTextResponse(f"no schedule {schedule_id!r}", status_code=404)
        return self._back(request, "/schedules", f"{action}: {schedule_id}")

    async def cancel(self, request: Request) -> Response:
        form = await self._form(request)
        instance_id = form.get("instance_id", "")
        try:
            await run_in_threadpool(self.app.cancel, instance_id, form.get("reason", "") or "")
        except WorkflowNotFound:
            return PlainTextResponse(f"no instance {instance_id!r}", status_code=404)
        return self._back(request, f"/instances/{instance_id}", "cancel requested")

    async def fork(self, request: Request) -> Response:
        form = await self._form(request)
        instance_id = form.get("instance_id", "")
        try:
            step = int(form.get("step", ""))
        except ValueError:
            return PlainTextResponse("not forked: step must be a whole number", status_code=400)
        new_id = form.get("new_id") or None
        try:
            forked = await run_in_threadpool(
                lambda: self.app.fork(instance_id, step=step, new_id=new_id)
            )
        except WorkflowNotFound:
            return PlainTextResponse(f"no instance {instance_id!r}", status_code=404)
        except ReplayKitError as exc:
            return PlainTextResponse(f"not forked: {exc}", status_code=400)
        return self._back(request, f"/instances/{quote(forked)}", f"forked from {instance_id}")

    async def send_event(self, request: Request) -> Response:
        form = await self._form(request)
        instance_id = form.get("instance_id") or None
        try:
            data = json.loads(form.get("data") or "null")
            await run_in_threadpool(
                lambda: self.app.send_event(
                    form.get("type", ""), data, instance_id=instance_id, source="replaykit-viewer"
                )
            )
        except (ValueError, ReplayKitError) as exc:
            return PlainTextResponse(f"event not sent: {exc}", status_code=400)
        target = f"/instances/{instance_id}" if instance_id else "/"
        return self._back(request, target, f"event {form.get('type', '')} sent")

    async def _form(self, request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            raise _Forbidden
        body = (await request.body()).decode("utf-8", "replace")
        return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}

    def _back(self, request: Request, path: str, flash: str) -> Response:
        root = request.scope.get("root_path", "").rstrip("/")
        return RedirectResponse(f"{root}{path}?{urlencode({'flash': flash})}", status_code=303)


class _Forbidden(Exception):
    pass


def _forbidden(request: Request, exc: Exception) -> Response:
    return PlainTextResponse("cross-origin form posts are refused", status_code=403)


def _healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def build_viewer(app: App, *, allow_actions: bool = False) -> Starlette:
    """See :func:`replaykit.integrations.viewer.viewer_app`."""
    viewer = Viewer(app, allow_actions=allow_actions)
    routes = [
        Route("/", viewer.instances),
        Route("/healthz", _healthz),
        Route("/schedules", viewer.schedules),
        Route("/queues", viewer.queues),
        Route("/instances/{instance_id:path}", viewer.instance),
    ]
    if allow_actions:
        routes += [
            Route("/actions/cancel", viewer.cancel, methods=["POST"]),
            Route("/actions/fork", viewer.fork, methods=["POST"]),
            Route("/actions/send-event", viewer.send_event, methods=["POST"]),
            Route("/actions/schedules/{action}", viewer.schedule_action, methods=["POST"]),
        ]
    return Starlette(routes=routes, exception_handlers={_Forbidden: _forbidden})


def combined_app(app: App, *, allow_actions: bool = False) -> tuple[Starlette, list[str]]:
    """The CloudEvents intake at ``POST /events`` (when :mod:`replaykit.integrations.http` is
    installed) and the viewer at ``/``, as one ASGI app; also names the parts it contains."""
    routes: list[BaseRoute] = []
    parts: list[str] = []
    try:
        from ..http import cloudevents_routes
    except ImportError:  # the http integration is not installed
        pass
    else:
        routes.extend(cloudevents_routes(app, "/events"))
        parts.append("CloudEvents intake at POST /events (and /events/)")
    routes.append(Mount("/", app=build_viewer(app, allow_actions=allow_actions)))
    parts.append("viewer at /")
    return Starlette(routes=routes), parts


__all__ = ["STATUSES", "build_viewer", "combined_app"]

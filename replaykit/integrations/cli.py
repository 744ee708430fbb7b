"""The ``replaykit`` command: run workers, inspect and steer instances, check replays.

    replaykit worker myapp.workflows:app              # workers until SIGINT/SIGTERM
    replaykit serve myapp.workflows:app --port 8000   # workers + CloudEvents intake + viewer
    replaykit --database sqlite:///orders.db list --status waiting --older-than 1h
    replaykit show ORDER-ID
    replaykit cancel ORDER-ID --reason "customer asked"
    replaykit fork ORDER-ID --step 4                  # re-run from step 4 as a new instance
    replaykit send-event payment.completed --data '{"by": "visa"}' --instance ORDER-ID
    replaykit replay-check myapp.workflows:app --since 7d
    replaykit migrate --show
    replaykit stats
    replaykit schedules list --upcoming 3
    replaykit schedules pause|resume|trigger|delete SCHEDULE-ID
    replaykit queues
    replaykit demo

``--database`` defaults to ``$REPLAYKIT_DATABASE`` or ``sqlite:///replaykit.db``; ``--json``
prints machine-readable output on stdout. Exit codes: see :data:`EXIT_CODES`.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Annotated, Any, NoReturn, TypeVar

import msgspec
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..core.errors import ReplayKitError, ScheduleNotFound, StorageError, WorkflowNotFound
from ..core.schedules import Schedule, upcoming
from ..runtime.app import App
from ..storage import INSTANCE_STATUSES, InstanceRecord
from ..testing import ReplayCheck, replay_check
from .viewer.timeline import age, error_of, human_seconds, parse_duration, when
from .viewer.timeline import timeline as make_timeline

DEFAULT_DATABASE = "sqlite:///replaykit.db"
EXIT_CODES = {
    0: "success",
    1: "error (database, bad input, unknown workflow, ...)",
    2: "usage error (unknown command or option, bad value)",
    3: "instance or schedule not found",
    4: "replay-check found non-determinism",
    130: "interrupted",
}

cli = typer.Typer(
    name="replaykit",
    help="Run and operate replaykit workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    epilog="Exit codes: " + "; ".join(f"{k} {v}" for k, v in EXIT_CODES.items()),
)


@dataclass
class Options:
    database: str | None
    json: bool

    @property
    def url(self) -> str:
        return self.database or DEFAULT_DATABASE


def _out() -> Console:
    # Piped output (grep, less, CI logs) is not cut at 80 columns; tables only take what they need.
    return Console(width=None if sys.stdout.isatty() else 250)


def _err() -> Console:
    return Console(stderr=True)


def _emit(options: Options, data: Any, render: Any) -> None:
    """Print ``data`` as JSON with ``--json``, else the rich renderable ``render``."""
    if options.json:
        sys.stdout.write(json.dumps(msgspec.to_builtins(data), indent=2, default=str) + "\n")
    else:
        _out().print(render)


@contextmanager
def _client(options: Options, *, migrated: bool = True) -> Iterator[App]:
    """A client App on ``options.url``; it never migrates. With ``migrated``, the database must
    be migrated first (:func:`require_migrated`)."""
    app = App(options.url, workers=False, auto_migrate=False)
    try:
        if migrated:
            require_migrated(app)
        yield app
    finally:
        app.stop()


def require_migrated(app: App) -> None:
    """Raise StorageError saying that the database is not (fully) migrated when a migration of
    its adapter is pending: a command would otherwise fail on a missing table or column."""
    status = app.migrations()
    pending = [f"{m['version']}_{m['name']}" for m in status if m["state"] == "pending"]
    if pending:
        state = "not migrated" if len(pending) == len(status) else "not fully migrated"
        shown = ", ".join(pending[:3]) + (", ..." if len(pending) > 3 else "")
        raise StorageError(
            f"the database is {state}: {len(pending)} of {len(status)} migrations are pending "
            f"({shown}); run 'replaykit migrate' on it first"
        )


def load_app(path: str) -> App:
    """Import ``module:attribute`` (an App, or a function returning one); cwd is importable."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise typer.BadParameter(f"{path!r}: use module:attribute, e.g. myapp.workflows:app")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part)
    if not isinstance(target, App) and callable(target):
        target = target()
    if not isinstance(target, App):
        raise typer.BadParameter(f"{path!r} is a {type(target).__name__}, not a replaykit App")
    return target


# --------------------------------------------------------------------------- root options


@cli.callback()
def _root(
    ctx: typer.Context,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            "-d",
            envvar="REPLAYKIT_DATABASE",
            help=f"Database URL [env: REPLAYKIT_DATABASE; default: {DEFAULT_DATABASE}]",
            show_envvar=False,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    ctx.obj = Options(database=database, json=json_output)


F = TypeVar("F", bound=Callable[..., Any])


def _command(name: str | None = None, *, group: typer.Typer | None = None) -> Callable[[F], F]:
    """Register a command (on ``cli``, or ``group``) whose domain errors become exit codes
    (also under CliRunner)."""

    def register(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> None:
            try:
                fn(*args, **kwargs)
            except (WorkflowNotFound, ScheduleNotFound) as exc:
                _fail(exc, 3)
            except (ReplayKitError, ValueError, ImportError, AttributeError) as exc:
                _fail(exc, 1)

        (group or cli).command(name)(run)
        return fn

    return register


def _fail(exc: BaseException, code: int) -> NoReturn:
    _err().print(f"replaykit: {exc}", markup=False, highlight=False)
    raise typer.Exit(code)


def _opts(ctx: typer.Context) -> Options:
    options: Options = ctx.obj
    return options


# --------------------------------------------------------------------------- running


class _StopSignal:
    """SIGINT/SIGTERM set an event instead of raising; previous handlers come back on exit."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> threading.Event:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self.event

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@_command()
def worker(
    ctx: typer.Context,
    app_path: Annotated[str, typer.Argument(metavar="APP", help="module:attribute of an App")],
) -> None:
    """Run the App's workers until SIGINT or SIGTERM, then stop cleanly.

    The App's own database is used; instances held at shutdown are released for other workers.
    """
    app = load_app(app_path)
    err = _err()
    with _StopSignal() as stop, app:
        err.print(f"replaykit worker {app.owner} running on {app.database}; Ctrl-C stops it")
        stop.wait()
        err.print("stopping: finishing the current steps and releasing instances…")
    err.print("worker stopped")


@_command()
def serve(
    ctx: typer.Context,
    app_path: Annotated[str, typer.Argument(metavar="APP", help="module:attribute of an App")],
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    allow_actions: Annotated[
        bool, typer.Option("--allow-actions", help="Let the viewer cancel, fork and send events.")
    ] = False,
    workers: Annotated[bool, typer.Option(help="Run workers in this process.")] = True,
) -> None:
    """Workers + the CloudEvents endpoint (/events) + the web viewer (/) on one port."""
    try:
        import uvicorn
    except ImportError as exc:
        raise typer.BadParameter(
            "serve needs uvicorn and starlette: pip install 'replaykit-durable[http]'"
        ) from exc
    from .viewer.server import combined_app

    app = load_app(app_path)
    app.run_workers = app.run_workers and workers
    asgi, parts = combined_app(app, allow_actions=allow_actions)
    config = uvicorn.Config(asgi, host=host, port=port, log_level="info", lifespan="off")

    class Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn re-raises SIGTERM after shutting down; we stop the App and exit 0 instead
            signals = (signal.SIGINT, signal.SIGTERM)
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    with app:
        _err().print(f"replaykit serving {', '.join(parts)} on http://{host}:{port}")
        Server(config).run()


# --------------------------------------------------------------------------- schema


@_command()
def migrate(
    ctx: typer.Context,
    show: Annotated[
        bool, typer.Option("--show", help="List applied/pending; change nothing.")
    ] = False,
) -> None:
    """Apply pending schema migrations (or --show them)."""
    options = _opts(ctx)
    with _client(options, migrated=False) as app:
        if show:
            status = migration_status(app)
            table = Table("version", "name", "state", title="migrations")
            for row in status:
                table.add_row(row["version"], row["name"], row["state"])
            _emit(options, status, table)
        else:
            applied = app.migrate()
            text = f"applied {', '.join(applied)}" if applied else "schema is up to date"
            _emit(options, {"applied": applied}, text)


def migration_status(app: App) -> list[dict[str, str]]:
    """Every migration shipped with the adapter, ``applied`` or ``pending``."""
    return app.migrations()


# --------------------------------------------------------------------------- inspecting


def _instances_table(rows: list[InstanceRecord], title: str) -> Table:
    table = Table(title=title)
    table.add_column("instance", no_wrap=True)
    table.add_column("workflow", no_wrap=True)
    table.add_column("status")
    table.add_column("run", justify="right")
    table.add_column("version", no_wrap=True)
    table.add_column("created")
    table.add_column("age", justify="right")
    now = time.time()
    for r in rows:
        table.add_row(
            r.instance_id,
            r.workflow,
            _status_markup(r.status),
            str(r.run),
            r.version or "-",
            when(r.created_at),
            age(r.created_at, now),
        )
    return table


_STATUS_STYLE = {
    "completed": "green",
    "failed": "red",
    "blocked": "red",
    "cancelled": "magenta",
    "cancelling": "magenta",
    "waiting": "yellow",
    "queued": "bright_black",
    "running": "cyan",
    "pending": "blue",
}


def _deadline(record: InstanceRecord) -> str:
    """The deadline of ``show``'s first line; a queued start's timeout until its admission."""
    if record.deadline is not None:
        return f"  deadline {when(record.deadline)}"
    if record.timeout is not None:
        return f"  deadline {record.timeout:g} s after its admission"
    return ""


def _status_markup(status: str) -> str:
    return f"[{_STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _age_window(
    older_than: str | None, newer_than: str | None
) -> tuple[float | None, float | None]:
    now = time.time()
    try:
        before = now - parse_duration(older_than) if older_than else None
        after = now - parse_duration(newer_than) if newer_than else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    return before, after


@_command("list")
def list_(
    ctx: typer.Context,
    workflow: Annotated[str | None, typer.Option(help="Only this workflow.")] = None,
    status: Annotated[str | None, typer.Option(help=", ".join(INSTANCE_STATUSES))] = None,
    older_than: Annotated[
        str | None, typer.Option(help="Created longer ago than this (90s, 15m, 1h, 2d).")
    ] = None,
    newer_than: Annotated[str | None, typer.Option(help="Created within this duration.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """List instances, newest first."""
    options = _opts(ctx)
    before, after = _age_window(older_than, newer_than)
    with _client(options) as app:
        rows = app.list_instances(
            workflow=workflow,
            status=status,
            limit=limit,
            offset=offset,
            created_before=before,
            created_after=after,
        )
        _emit(options, rows, _instances_table(rows, f"{len(rows)} instance(s)"))


@_command()
def show(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(metavar="ID")],
    run: Annotated[int | None, typer.Option(help="An earlier (archived) run of a Recur.")] = None,
) -> None:
    """An instance and its history: step, command, duration, result or error."""
    options = _opts(ctx)
    with _client(options) as app:
        record = app.status(instance_id)
        events = app.history(record.instance_id, run=run)
        if options.json:
            _emit(options, {"instance": record, "history": events}, "")
            return
        console = _out()
        console.print(
            f"[bold]{record.instance_id}[/]  {record.workflow}  {_status_markup(record.status)}"
            f"  run {run or record.run} of {record.run}  version {record.version or '-'}"
            f"  created {when(record.created_at)}" + _deadline(record)
        )
        if record.forked_from is not None:
            console.print(f"forked from {record.forked_from} at step {record.forked_step}")
        table = Table("#", "step", "event", "name", "attempt", "duration", "result / error")
        for row in make_timeline(events):
            style = "red" if row.error is not None else None
            table.add_row(
                str(row.position),
                "" if row.step is None else str(row.step),
                row.kind,
                row.name,
                "" if row.attempt is None else str(row.attempt),
                human_seconds(row.duration),
                row.detail,
                style=style,
            )
        console.print(table)
        error = error_of(record)
        if error is not None:
            console.print(f"[red]{record.status}: {error.short_type}: {error.message}[/]")
            if error.traceback:
                console.print(error.traceback, highlight=False)


@_command()
def cancel(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option(help="Shown to the workflow.")] = "cancelled from the CLI",
) -> None:
    """Cancel an instance: it gets WorkflowCancelled at its current yield; compensations run."""
    options = _opts(ctx)
    with _client(options) as app:
        record = app.cancel(instance_id, reason)
        text = f"cancel requested for {record.instance_id} (now {record.status})"
        _emit(options, record, text)


@_command()
def fork(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(metavar="ID")],
    step: Annotated[int, typer.Option(help="Re-run from this step (`show ID` lists them).")],
    new_id: Annotated[str | None, typer.Option(help="The new instance's id.")] = None,
) -> None:
    """A new instance from ID's history up to --step: the steps before it are replayed, not run
    again; --step and the rest run again (on the workers of the current code)."""
    options = _opts(ctx)
    with _client(options) as app:
        forked = app.fork(instance_id, step=step, new_id=new_id)
        data = {"instance_id": forked, "forked_from": instance_id, "forked_step": step}
        _emit(options, data, f"forked {instance_id} at step {step} into {forked}")


@_command("send-event")
def send_event(
    ctx: typer.Context,
    type_: Annotated[str, typer.Argument(metavar="TYPE", help="Event type.")],
    data: Annotated[str, typer.Option(help="Event data as JSON.")] = "null",
    instance: Annotated[str | None, typer.Option(help="Only this instance.")] = None,
    source: Annotated[str, typer.Option(help="CloudEvents source.")] = "replaykit-cli",
    event_id: Annotated[
        str, typer.Option("--id", help="Event id; deduplicated together with --source.")
    ] = "",
) -> None:
    """Send an event to one instance, or to every instance waiting for TYPE."""
    options = _opts(ctx)
    try:
        payload = json.loads(data)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--data is not JSON: {exc}") from exc
    with _client(options) as app:
        stored = app.send_event(type_, payload, instance_id=instance, source=source, id=event_id)
        _emit(options, {"stored": stored}, "event stored" if stored else "duplicate ignored")


@_command()
def stats(ctx: typer.Context) -> None:
    """Counts by status, the oldest waiting instance, lease owners, timers, outbox."""
    options = _opts(ctx)
    with _client(options) as app:
        data = app.stats()
        table = Table("", "", title="replaykit stats", show_header=False)
        for status, n in sorted(data.get("by_status", {}).items()):
            table.add_row(_status_markup(status), str(n))
        oldest = data.get("oldest_waiting")
        table.add_row("oldest waiting", f"{when(oldest)} ({age(oldest)} ago)" if oldest else "-")
        for owner, n in sorted(data.get("lease_owners", {}).items()):
            table.add_row(f"lease owner {owner}", f"{n} running")
        table.add_row("timers", str(data.get("timers", 0)))
        table.add_row("outbox pending", str(data.get("outbox_pending", 0)))
        for name, queue in sorted(data.get("queues", {}).items()):
            counts = f"{queue['queued']} queued, {queue['running']} running"
            table.add_row(f"queue {name}", counts)
        _emit(options, data, table)


# --------------------------------------------------------------------------- schedules

schedules = typer.Typer(help="List and steer durable schedules.", no_args_is_help=True)
cli.add_typer(schedules, name="schedules")


def _schedule_row(schedule: Schedule, count: int) -> dict[str, Any]:
    spec = schedule.spec
    every = f"every {human_seconds(spec.every)}" if spec.every is not None else ""
    return {
        **msgspec.to_builtins(schedule),
        "when": f"{spec.cron} ({spec.timezone})" if spec.cron else every,
        "state": "paused" if schedule.paused else "active",
        "catch_up": spec.catch_up,
        "timezone": spec.timezone,
        "upcoming": upcoming(schedule, count),
    }


@_command("list", group=schedules)
def schedules_list(
    ctx: typer.Context,
    count: Annotated[int, typer.Option("--upcoming", help="Next fire times to show.")] = 1,
) -> None:
    """Every schedule with its state and next fire times (UTC)."""
    options = _opts(ctx)
    with _client(options) as app:
        rows = [_schedule_row(s, max(count, 1)) for s in app.list_schedules()]
    table = Table("ID", "WORKFLOW", "WHEN", "CATCH-UP", "STATE", "NEXT (UTC)", "LAST TICK")
    for row in rows:
        nexts = ", ".join(when(t) for t in row["upcoming"]) or "-"
        state = "[yellow]paused[/]" if row["paused"] else "[green]active[/]"
        table.add_row(
            row["schedule_id"], row["workflow"], row["when"], row["catch_up"], state, nexts,
            when(row["last_tick"]),
        )  # fmt: skip
    _emit(options, rows, table if rows else "no schedules")


def _schedule_action(ctx: typer.Context, schedule_id: str, action: str) -> None:
    options = _opts(ctx)
    with _client(options) as app:
        if action == "pause":
            row = _schedule_row(app.pause_schedule(schedule_id), 1)
            _emit(options, row, f"paused {schedule_id}")
        elif action == "resume":
            row = _schedule_row(app.resume_schedule(schedule_id), 1)
            _emit(options, row, f"resumed {schedule_id}; next at {when(row['next_fire_at'])} UTC")
        elif action == "trigger":
            handle = app.trigger_schedule(schedule_id)
            _emit(options, {"instance_id": handle.instance_id}, f"started {handle.instance_id}")
        elif not app.delete_schedule(schedule_id):
            raise ScheduleNotFound(f"no schedule with id {schedule_id!r}")
        else:
            _emit(options, {"deleted": schedule_id}, f"deleted {schedule_id}")


ScheduleId = Annotated[str, typer.Argument(metavar="SCHEDULE-ID")]


@_command("pause", group=schedules)
def schedules_pause(ctx: typer.Context, schedule_id: ScheduleId) -> None:
    """Stop firing until resumed."""
    _schedule_action(ctx, schedule_id, "pause")


@_command("resume", group=schedules)
def schedules_resume(ctx: typer.Context, schedule_id: ScheduleId) -> None:
    """Fire again from the next tick (ticks missed while paused are not caught up)."""
    _schedule_action(ctx, schedule_id, "resume")


@_command("trigger", group=schedules)
def schedules_trigger(ctx: typer.Context, schedule_id: ScheduleId) -> None:
    """Start the schedule's workflow once, now (a worker runs it)."""
    _schedule_action(ctx, schedule_id, "trigger")


@_command("delete", group=schedules)
def schedules_delete(ctx: typer.Context, schedule_id: ScheduleId) -> None:
    """Delete the schedule; the instances it started stay."""
    _schedule_action(ctx, schedule_id, "delete")


@_command()
def queues(ctx: typer.Context) -> None:
    """Declared queues: instances queued and running (admitted, not finished), and limits."""
    options = _opts(ctx)
    with _client(options) as app:
        found = app.queue_stats()
        table = Table("queue", "queued", "running", "concurrency", "per worker", "rate")
        for q in found:
            spec = q.spec
            rate = "-" if spec.rate_limit is None else f"{spec.rate_limit} per {spec.rate_period} s"
            table.add_row(
                spec.name,
                str(q.queued),
                str(q.running),
                "-" if spec.concurrency is None else str(spec.concurrency),
                "-" if spec.per_worker is None else str(spec.per_worker),
                rate,
            )
        data = [
            {"name": q.spec.name, "queued": q.queued, "running": q.running, **q.spec.limits()}
            for q in found
        ]
        _emit(options, data, table if found else "no queue is declared")


# --------------------------------------------------------------------------- replay check


def _candidates(
    app: App, workflow: str | None, since: float | None, status: str | None
) -> list[InstanceRecord]:
    found: list[InstanceRecord] = []
    page = 500
    while True:
        rows = app.list_instances(
            workflow=workflow, status=status, created_after=since, limit=page, offset=len(found)
        )
        found.extend(rows)
        if len(rows) < page:
            return found


@_command("replay-check")
def replay_check_cmd(
    ctx: typer.Context,
    app_path: Annotated[str, typer.Argument(metavar="APP", help="module:attribute of an App")],
    since: Annotated[
        str | None, typer.Option(help="Only instances created within this duration (7d, 12h).")
    ] = None,
    workflow: Annotated[str | None, typer.Option(help="Only this workflow.")] = None,
    status: Annotated[str | None, typer.Option(help="Only instances in this status.")] = None,
) -> None:
    """Replay stored histories against the current code; exit 4 on any non-determinism.

    Histories come from --database when given, else from the App's own database.
    """
    options = _opts(ctx)
    loaded = load_app(app_path)
    _, after = _age_window(None, since)
    url = options.database or loaded.database
    client = App(url, registry=loaded.registry, workers=False, auto_migrate=False)
    try:
        require_migrated(client)
        records = _candidates(client, workflow, after, status)
        checked, skipped = _check_all(client, records)
    finally:
        client.stop()
    results = [r for _, r in checked]
    failed = [r for r in results if not r.ok]
    versions = version_report(checked, loaded.registry.workflows)
    summary = {"checked": len(results), "failed": len(failed), "skipped": skipped}
    text = (
        f"{len(results)} checked, {len(failed)} broken, {len(skipped)} skipped "
        "(workflow not registered in the App)"
    )
    if options.json:
        _emit(options, {**summary, "versions": versions, "results": failed}, "")
    else:
        if versions:
            _out().print(_versions_table(versions))
        if failed:
            table = Table("instance", "step", "error", title="non-determinism", show_lines=True)
            for r in failed:
                table.add_row(r.instance_id, str(r.step), r.error)
            _out().print(table)
        _out().print(f"[{'red' if failed else 'green'}]{text}[/]")
    if failed:
        raise typer.Exit(4)


def _check_all(
    app: App, records: list[InstanceRecord]
) -> tuple[list[tuple[InstanceRecord, ReplayCheck]], list[str]]:
    checked: list[tuple[InstanceRecord, ReplayCheck]] = []
    skipped: list[str] = []
    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=_err(), transient=True) as progress:
        task = progress.add_task("replay", total=len(records))
        for record in records:
            wf = app.registry.workflows.get(record.workflow)
            if wf is None:
                skipped.append(record.instance_id)
            else:
                events = app.history(record.instance_id, run=record.run)
                checked.append((record, replay_check(wf, events, registry=app.registry)))
            progress.advance(task)
    return checked, skipped


def version_report(
    checked: list[tuple[InstanceRecord, ReplayCheck]], workflows: dict[str, Any]
) -> list[dict[str, Any]]:
    """Replay results per (workflow, code version that started the instance): how many replay
    cleanly and how many break under the current code, whether that version is the current
    code's, and for each patch how many instances passed its point on the old path (``old``:
    they still need the old branch, so ``Patched`` cannot become ``DeprecatePatch`` yet) or took
    it (``new``)."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for record, result in checked:
        version = record.version or "unknown"
        current = getattr(workflows.get(record.workflow), "version", None)
        group = groups.setdefault(
            (record.workflow, version),
            {
                "workflow": record.workflow,
                "version": version,
                "current": version == current,
                "checked": 0,
                "ok": 0,
                "failed": 0,
                "patches": {},
            },
        )
        group["checked"] += 1
        group["ok" if result.ok else "failed"] += 1
        for patch, taken in result.patches.items():
            counts = group["patches"].setdefault(patch, {"new": 0, "old": 0})
            counts["new" if taken else "old"] += 1
    return [groups[key] for key in sorted(groups)]


def _versions_table(versions: list[dict[str, Any]]) -> Table:
    table = Table("workflow", "version", "instances", "replay cleanly", "broken", "patches")
    table.title = "per code version"
    for v in versions:
        patches = ", ".join(
            f"{patch}: {n['new']} new, {n['old']} old path" for patch, n in v["patches"].items()
        )
        table.add_row(
            v["workflow"],
            f"{v['version']} (current)" if v["current"] else v["version"],
            str(v["checked"]),
            f"[green]{v['ok']}[/]",
            f"[red]{v['failed']}[/]" if v["failed"] else "0",
            patches or "-",
        )
    return table


# --------------------------------------------------------------------------- demo


@_command()
def demo() -> None:
    """Run the order-saga demo on a temporary SQLite file."""
    from ..demo import main as run_demo

    code = run_demo([])
    if code:
        raise typer.Exit(code)


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (see :data:`EXIT_CODES`)."""
    try:
        result = cli(args=argv, prog_name="replaykit", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        return 130
    except WorkflowNotFound as exc:
        _err().print(f"replaykit: {exc}", markup=False, highlight=False)
        return 3
    except (ReplayKitError, ValueError, ImportError, AttributeError) as exc:
        _err().print(f"replaykit: {exc}", markup=False, highlight=False)
        return 1
    except Exception as exc:  # click's usage errors (typer may vendor its own click)
        code, show = getattr(exc, "exit_code", None), getattr(exc, "show", None)
        if not isinstance(code, int) or show is None:
            raise
        show()
        return code
    return result if isinstance(result, int) else 0


__all__ = [
    "DEFAULT_DATABASE",
    "EXIT_CODES",
    "cli",
    "load_app",
    "main",
    "migration_status",
    "require_migrated",
]


if __name__ == "__main__":
    sys.exit(main())

"""The ``replaykit`` command: inspect and steer instances in a database.

    replaykit --database sqlite:///orders.db list --status waiting
    replaykit show ORDER-ID
    replaykit cancel ORDER-ID --reason "customer asked"
    replaykit send-event payment.completed --data '{"by": "visa"}' --instance ORDER-ID
    replaykit migrate
    replaykit demo

``--database`` defaults to ``$REPLAYKIT_DATABASE`` or ``sqlite:///replaykit.db``; ``--json``
prints machine-readable output. Exit codes: 0 ok, 1 error, 2 usage, 3 instance not found.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

import msgspec

from ..core.errors import ReplayKitError, WorkflowNotFound
from ..runtime.app import App


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="replaykit", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database",
        default=os.environ.get("REPLAYKIT_DATABASE", "sqlite:///replaykit.db"),
        help="database URL (default: $REPLAYKIT_DATABASE or sqlite:///replaykit.db)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="list instances, newest first")
    listing.add_argument("--workflow")
    listing.add_argument("--status")
    listing.add_argument("--limit", type=int, default=50)
    show = sub.add_parser("show", help="an instance and its history")
    show.add_argument("instance_id")
    cancel = sub.add_parser("cancel", help="cancel an instance (compensations run)")
    cancel.add_argument("instance_id")
    cancel.add_argument("--reason", default="cancelled from the CLI")
    send = sub.add_parser("send-event", help="send an event")
    send.add_argument("type")
    send.add_argument("--data", default="null", help="JSON data")
    send.add_argument("--instance", help="only this instance")
    send.add_argument("--source", default="replaykit-cli")
    send.add_argument("--id", default="", help="event id (deduplicated with --source)")
    sub.add_parser("migrate", help="apply pending migrations")
    sub.add_parser("stats", help="counts by status, oldest waiting instance, lease owners")
    sub.add_parser("demo", help="run the order-saga demo on a temporary SQLite file")
    return parser


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _print(data: Any, as_json: bool, text: str) -> None:
    if as_json:
        print(json.dumps(msgspec.to_builtins(data), indent=2, default=str))
    else:
        print(text)


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from ..demo import main as demo

        return demo([])
    app = App(args.database, workers=False, auto_migrate=args.command == "migrate")
    try:
        return _dispatch(app, args)
    finally:
        app.stop()


def _dispatch(app: App, args: argparse.Namespace) -> int:
    if args.command == "migrate":
        applied = app.storage.migrate()
        _print(applied, args.json, "schema is up to date")
    elif args.command == "list":
        rows = app.list_instances(workflow=args.workflow, status=args.status, limit=args.limit)
        lines = [f"{'instance':<36} {'workflow':<20} {'status':<10} created"]
        lines += [
            f"{r.instance_id:<36} {r.workflow:<20} {r.status:<10} {_when(r.created_at)}"
            for r in rows
        ]
        _print(rows, args.json, "\n".join(lines))
    elif args.command == "show":
        record = app.status(args.instance_id)
        history = app.history(args.instance_id)
        lines = [
            f"{record.instance_id}  {record.workflow}  {record.status}  run {record.run}",
            f"{'#':>3} {'step':>4}  {'event':<22} at",
        ]
        for i, event in enumerate(history):
            step = getattr(event, "step", "")
            name = getattr(event, "name", "")
            lines.append(f"{i:>3} {step!s:>4}  {type(event).__name__:<22} {_when(event.at)} {name}")
        _print({"instance": record, "history": history}, args.json, "\n".join(lines))
    elif args.command == "cancel":
        record = app.cancel(args.instance_id, args.reason)
        _print(record, args.json, f"cancel requested for {record.instance_id} ({record.status})")
    elif args.command == "send-event":
        data = json.loads(args.data)
        stored = app.send_event(
            args.type, data, instance_id=args.instance, source=args.source, id=args.id
        )
        _print({"stored": stored}, args.json, "event stored" if stored else "duplicate ignored")
    elif args.command == "stats":
        stats = app.storage.stats()
        _print(stats, args.json, json.dumps(stats, indent=2, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except WorkflowNotFound as exc:
        print(f"replaykit: {exc}", file=sys.stderr)
        return 3
    except (ReplayKitError, ValueError) as exc:
        print(f"replaykit: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""replaykit runner: run with /work/main/.venv/bin/python (see common.py for the protocol)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# REPLAYKIT_SRC: a folder holding replaykit/ and storage_adapters/ (default: this repository)
sys.path.insert(0, os.environ.get("REPLAYKIT_SRC") or os.path.dirname(os.path.dirname(HERE)))

import common  # noqa: E402

COUNTER = common.SqliteCommitCounter()
COUNTER.install()  # before replaykit opens any connection
PG_TRIPS = common.PsycopgStatementCounter()

from replaykit.core.definitions import Registry  # noqa: E402
from replaykit.runtime.app import App  # noqa: E402

sys.path.append(os.path.dirname(HERE))  # benchmarks/, after REPLAYKIT_SRC
from workloads import three_steps, wait_once  # noqa: E402


def make_app(url: str) -> App:
    return App(url, registry=Registry(), workflows=[three_steps, wait_once])


def run_one(app: App, i: int) -> None:
    app.start_workflow(three_steps, i).result(timeout=60)


def main_phase(app: App, sizes: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    run_one(app, -1)  # warm-up
    t = common.Timer()
    for i in range(sizes["n_seq"]):
        run_one(app, i)
    out["seq_wf_per_s"] = sizes["n_seq"] / t.s()

    t = common.Timer()
    handles = [app.start_workflow(three_steps, i) for i in range(sizes["n_burst"])]
    for h in handles:
        h.result(timeout=600)
    out["burst_wf_per_s"] = sizes["n_burst"] / t.s()

    lat = []
    for i in range(sizes["n_latency"]):
        t = common.Timer()
        run_one(app, i)
        lat.append(t.ms())
    out.update(common.latency_summary("latency_ms", lat, {"p50": 0.5, "p90": 0.9}))

    wake = []
    for _ in range(sizes["n_wake"]):
        h = app.start_workflow(wait_once)
        common.wait_until(lambda h=h: app.status(h.instance_id).status == "waiting")
        common.time.sleep(common.READY_GRACE_S)
        t = common.Timer()
        app.send_event("bench.go", {"ok": True}, instance_id=h.instance_id)
        h.result(timeout=60)
        wake.append(t.ms())
    out.update(common.latency_summary("wake_ms", wake, {"p50": 0.5}))
    return out


def park_phase(app: App, n: int) -> dict[str, Any]:
    run_one(app, -1)
    before = common.settled_rss_mb()
    handles = [app.start_workflow(wait_once) for _ in range(n)]
    common.wait_until(lambda: app.status(handles[-1].instance_id).status == "waiting", 600, 0.05)
    common.wait_until(lambda: not app.worker or not app.worker.active_count(), 600, 0.05)
    return {"parked": n, "rss_added_mb": common.settled_rss_mb() - before}


def main() -> None:
    args = common.parse_args()
    sizes = json.loads(args.sizes)
    if args.phase == "commits":
        PG_TRIPS.install()
        with make_app(args.db_url) as app:
            for i in range(args.n):
                run_one(app, i)
        common.commits_phase_result(COUNTER, args.n, pg_round_trips=PG_TRIPS.round_trips)
        return
    with make_app(args.db_url) as app:
        if args.phase == "profile":  # workloads 1 and 3 only, under py-spy
            for i in range(sizes["n_seq"] + sizes["n_latency"]):
                run_one(app, i)
        elif args.phase == "main":
            common.emit(main_phase(app, sizes))
        else:
            common.emit(park_phase(app, sizes["n_parked"]))


if __name__ == "__main__":
    main()

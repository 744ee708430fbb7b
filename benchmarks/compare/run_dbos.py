"""DBOS runner: run with benchmarks/.peers/dbos/bin/python (see common.py for the protocol).

Synchronous ``@DBOS.workflow()`` / ``@DBOS.step()`` functions, started with
``DBOS.start_workflow`` and awaited with ``handle.get_result()``. The event workload uses DBOS
messages: the workflow publishes ``set_event("ready")`` and then blocks in ``DBOS.recv``; the
client waits for "ready" with ``DBOS.get_event`` and sends the message with ``DBOS.send``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common

COUNTER = common.SqliteCommitCounter()
COUNTER.install()
PG_TRIPS = common.PsycopgStatementCounter()

from dbos import DBOS, DBOSConfig  # noqa: E402

TOPIC = "bench.go"


@DBOS.step()
def step_one(x: int) -> int:
    return x + 1


@DBOS.step()
def step_two(x: int) -> int:
    return x * 2


@DBOS.step()
def step_three(x: int) -> int:
    return x - 3


@DBOS.workflow()
def three_steps(x: int) -> int:
    return step_three(step_two(step_one(x)))


@DBOS.workflow()
def wait_once() -> Any:
    DBOS.set_event("ready", True)
    return DBOS.recv(TOPIC, timeout_seconds=3600)


def launch(url: str) -> None:
    config: DBOSConfig = {"name": "bench", "system_database_url": url, "log_level": "WARNING"}
    DBOS(config=config)
    DBOS.launch()


def run_one(i: int) -> int:
    result: int = DBOS.start_workflow(three_steps, i).get_result()
    return result


def main_phase(sizes: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    run_one(-1)
    t = common.Timer()
    for i in range(sizes["n_seq"]):
        run_one(i)
    out["seq_wf_per_s"] = sizes["n_seq"] / t.s()

    t = common.Timer()
    handles = [DBOS.start_workflow(three_steps, i) for i in range(sizes["n_burst"])]
    for h in handles:
        h.get_result()
    out["burst_wf_per_s"] = sizes["n_burst"] / t.s()

    lat = []
    for i in range(sizes["n_latency"]):
        t = common.Timer()
        run_one(i)
        lat.append(t.ms())
    out.update(common.latency_summary("latency_ms", lat, {"p50": 0.5, "p90": 0.9}))

    wake = []
    for _ in range(sizes["n_wake"]):
        handle = DBOS.start_workflow(wait_once)
        DBOS.get_event(handle.workflow_id, "ready", timeout_seconds=60)
        common.time.sleep(common.READY_GRACE_S)
        t = common.Timer()
        DBOS.send(handle.workflow_id, {"ok": True}, topic=TOPIC)
        handle.get_result()
        wake.append(t.ms())
    out.update(common.latency_summary("wake_ms", wake, {"p50": 0.5}))
    return out


def park_phase(n: int) -> dict[str, Any]:
    run_one(-1)
    before = common.settled_rss_mb()
    handles = [DBOS.start_workflow(wait_once) for _ in range(n)]
    for handle in handles:  # every instance has reached its recv
        DBOS.get_event(handle.workflow_id, "ready", timeout_seconds=600)
    return {"parked": n, "rss_added_mb": common.settled_rss_mb() - before}


def main() -> None:
    args = common.parse_args()
    sizes = json.loads(args.sizes)
    if args.phase == "commits":
        PG_TRIPS.install()
    launch(args.db_url)
    try:
        if args.phase == "main":
            result = main_phase(sizes)
        elif args.phase == "park":
            result = park_phase(sizes["n_parked"])
        else:
            for i in range(args.n):
                run_one(i)
    finally:
        DBOS.destroy(workflow_completion_timeout_sec=0)
    if args.phase == "commits":
        common.commits_phase_result(COUNTER, args.n, pg_round_trips=PG_TRIPS.round_trips)
    else:
        common.emit(result)
    os._exit(0)  # parked workflows hold executor threads; do not wait for them


if __name__ == "__main__":
    main()

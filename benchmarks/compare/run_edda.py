"""Edda runner: run with benchmarks/.peers/edda/bin/python (see common.py for the protocol).

Edda is asyncio-only. ``Workflow.start()`` runs a new instance inline until it completes or
suspends; the result is then read back from storage (``storage.get_instance``), which is the
"wait for result" step here. Events come in through ``EddaApp.handle_cloudevent`` (the call its
ASGI intake makes) with the ``eddainstanceid`` extension for point-to-point delivery; the resumed
instance's completion is observed through Edda's ``on_workflow_complete`` hook.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common

COUNTER = common.SqliteCommitCounter()
COUNTER.install()

from cloudevents.http import CloudEvent  # noqa: E402
from edda import EddaApp, WorkflowContext, activity, wait_event, workflow  # noqa: E402
from edda.hooks import HooksBase  # noqa: E402


@activity
async def step_one(ctx: WorkflowContext, x: int) -> int:
    return x + 1


@activity
async def step_two(ctx: WorkflowContext, x: int) -> int:
    return x * 2


@activity
async def step_three(ctx: WorkflowContext, x: int) -> int:
    return x - 3


@workflow
async def three_steps(ctx: WorkflowContext, x: int) -> int:
    a = await step_one(ctx, x)
    b = await step_two(ctx, a)
    return await step_three(ctx, b)


@workflow
async def wait_once(ctx: WorkflowContext) -> Any:
    event = await wait_event(ctx, "bench.go")
    return event.data


class Completion(HooksBase):
    """Resolves a future per instance when Edda reports it completed."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[Any]] = {}

    async def on_workflow_complete(self, instance_id: str, workflow_name: str, result: Any) -> None:
        fut = self.waiting.get(instance_id)
        if fut is not None and not fut.done():
            fut.set_result(result)


def edda_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return url.replace("postgresql://", "postgresql+asyncpg://", 1)
    return url


async def make_app(url: str, hooks: Completion | None = None) -> EddaApp:
    app = EddaApp(service_name="bench", db_url=edda_url(url), hooks=hooks)
    await app.initialize()
    return app


async def run_one(app: EddaApp, i: int) -> Any:
    instance_id = await three_steps.start(x=i)
    instance = await app.storage.get_instance(instance_id)
    assert instance is not None and instance["status"] == "completed", instance
    return instance["output_data"]


async def main_phase(url: str, sizes: dict[str, int]) -> dict[str, Any]:
    hooks = Completion()
    app = await make_app(url, hooks)
    out: dict[str, Any] = {}
    try:
        await run_one(app, -1)
        t = common.Timer()
        for i in range(sizes["n_seq"]):
            await run_one(app, i)
        out["seq_wf_per_s"] = sizes["n_seq"] / t.s()

        t = common.Timer()
        burst = [run_one(app, i) for i in range(sizes["n_burst"])]
        outcomes = await asyncio.gather(*burst, return_exceptions=True)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:  # e.g. SQLite "database is locked" under many concurrent starts
            out["burst_error"] = f"{len(failed)} of {len(burst)} failed: {failed[0]!r}"[:300]
        else:
            out["burst_wf_per_s"] = sizes["n_burst"] / t.s()

        lat = []
        for i in range(sizes["n_latency"]):
            t = common.Timer()
            await run_one(app, i)
            lat.append(t.ms())
        out.update(common.latency_summary("latency_ms", lat, {"p50": 0.5, "p90": 0.9}))

        wake = []
        loop = asyncio.get_running_loop()
        for _ in range(sizes["n_wake"]):
            instance_id = await wait_once.start()  # returns once the instance is suspended
            fut: asyncio.Future[Any] = loop.create_future()
            hooks.waiting[instance_id] = fut
            await asyncio.sleep(common.READY_GRACE_S)
            t = common.Timer()
            event = CloudEvent(
                {"type": "bench.go", "source": "bench", "eddainstanceid": instance_id},
                {"ok": True},
            )
            await app.handle_cloudevent(event, wait=True)
            await asyncio.wait_for(fut, 60)
            wake.append(t.ms())
        out.update(common.latency_summary("wake_ms", wake, {"p50": 0.5}))
    finally:
        await app.shutdown()
    return out


async def park_phase(url: str, n: int) -> dict[str, Any]:
    app = await make_app(url)
    try:
        await run_one(app, -1)
        before = common.settled_rss_mb()
        # 20 starts in flight on PostgreSQL; one at a time on SQLite, where concurrent starts
        # fail ("database is locked", or a UNIQUE error on channel_subscriptions)
        batch = 1 if url.startswith("sqlite") else 20
        for first in range(0, n, batch):
            await asyncio.gather(*(wait_once.start() for _ in range(min(batch, n - first))))
        return {"parked": n, "rss_added_mb": common.settled_rss_mb() - before}
    finally:
        await app.shutdown()


async def commits_phase(url: str, n: int) -> None:
    app = await make_app(url)
    try:
        for i in range(n):
            await run_one(app, i)
    finally:
        await app.shutdown()


def main() -> None:
    args = common.parse_args()
    sizes = json.loads(args.sizes)
    if args.phase == "main":
        common.emit(asyncio.run(main_phase(args.db_url, sizes)))
    elif args.phase == "park":
        common.emit(asyncio.run(park_phase(args.db_url, sizes["n_parked"])))
    else:
        asyncio.run(commits_phase(args.db_url, args.n))
        common.commits_phase_result(COUNTER, args.n)


if __name__ == "__main__":
    main()

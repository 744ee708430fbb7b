"""Load-independent A/B: instructions per workflow (or per replay) counted by valgrind's callgrind.

On a shared, busy machine wall-clock A/B pairs drown in noise; instruction counts do not depend on
what else the machine runs. Each figure is ``(Ir(N2) - Ir(N1)) / (N2 - N1)``: the process's start-up
and imports cancel out. Background threads that poll on a timer (heartbeat, timers) execute a few
instructions per wake-up, so a slower run under valgrind adds a little: read differences under ~5%
as noise, and look at the Python call counts (``--calls``, deterministic) to confirm.

    .venv/bin/python benchmarks/instructions.py BEFORE_TREE AFTER_TREE [--modes sqlite,replay,pg]

BEFORE_TREE and AFTER_TREE are checkouts (e.g. ``git worktree add /tmp/before <commit>``).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import subprocess
import sys
import tempfile
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
PG_DSN = os.environ.get("REPLAYKIT_TEST_PG_DSN") or "postgresql://postgres@127.0.0.1:5432/test"
SIZES = {"sqlite": (10, 40), "pg": (10, 40), "replay": (1, 5)}


def workload(mode: str, n: int) -> None:
    """Run the workload in this process: N workflows (sqlite/pg) or N replays of 500 steps."""
    sys.path.append(HERE)
    from workloads import three_steps

    from replaykit.core.definitions import Registry
    from replaykit.runtime.app import App

    if mode == "replay":
        import bench_replay

        from replaykit import Interpreter

        history = bench_replay.build_history(500)
        for _ in range(n):
            Interpreter(bench_replay.bench_loop, instance_id="bench-1").feed(
                history, replaying=True
            )
        return
    if mode == "sqlite":
        url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "i.db")
        app = App(
            url,
            registry=Registry(),
            workflows=[three_steps],
            storage_options={"synchronous": "OFF"},
        )
    else:
        app = App(PG_DSN, registry=Registry(), workflows=[three_steps])
    with app:
        for i in range(n):
            app.start_workflow(three_steps, i).result(timeout=120)


def instructions(tree: str, mode: str, n: int) -> int:
    env = dict(os.environ, REPLAYKIT_SRC=tree)
    proc = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--run",
            mode,
            str(n),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode:  # say why: the workload's own traceback, not valgrind's exit status
        lines = [line for line in proc.stderr.splitlines() if not line.startswith("==")]
        raise RuntimeError(f"{mode} x{n} in {tree} failed:\n" + "\n".join(lines[-30:]))
    match = re.search(r"Collected : (\d+)", proc.stderr)
    assert match, proc.stderr[-2000:]
    return int(match.group(1))


def calls(tree: str, mode: str, n: int) -> int:
    env = dict(os.environ, REPLAYKIT_SRC=tree)
    proc = subprocess.run(
        [sys.executable, __file__, "--calls-run", mode, str(n)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("trees", nargs="*")
    parser.add_argument("--modes", default="sqlite,replay,pg")
    parser.add_argument("--run", nargs=2)
    parser.add_argument("--calls-run", nargs=2)
    args = parser.parse_args()
    if args.run or args.calls_run:
        mode, n = args.run or args.calls_run
        sys.path.insert(0, os.environ["REPLAYKIT_SRC"])
        if args.run:
            workload(mode, int(n))
            return
        profile = cProfile.Profile()
        profile.enable()
        workload(mode, int(n))
        profile.disable()
        stats: Any = pstats.Stats(profile)
        print(sum(row[1] for row in stats.stats.values()))
        return
    before, after = args.trees
    print(f"{'mode':8}{'unit':>10}{'before':>14}{'after':>14}{'ratio':>8}{'calls':>8}{'calls':>8}")
    for mode in args.modes.split(","):
        lo, hi = SIZES[mode]
        per = []
        per_calls = []
        for tree in (before, after):
            per.append((instructions(tree, mode, hi) - instructions(tree, mode, lo)) / (hi - lo))
            per_calls.append((calls(tree, mode, hi) - calls(tree, mode, lo)) / (hi - lo))
        unit = "replay" if mode == "replay" else "workflow"
        print(
            f"{mode:8}{unit:>10}{per[0]:>14,.0f}{per[1]:>14,.0f}{per[1] / per[0]:>8.3f}"
            f"{per_calls[0]:>8,.0f}{per_calls[1]:>8,.0f}"
        )


if __name__ == "__main__":
    main()

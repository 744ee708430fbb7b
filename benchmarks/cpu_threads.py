"""CPU per workflow, split by thread: the caller (start_workflow + result) and the worker's run
threads, from ``/proc/self/task/<tid>/stat`` (Linux).

Runs N sequential 3-activity workflows in one ``App`` (SQLite ``synchronous=OFF``, or PostgreSQL
with ``--db pg``) after a warm-up, and prints the user+system CPU per workflow of every thread
group (``replaykit-run`` = the pool threads that run instances, ``MainThread`` = the caller).
Unlike ``bench_cpu.py`` nothing is traced or wrapped. ``REPLAYKIT_SRC=/path/to/checkout`` runs
another tree (alternate the two for an A/B in one session). Never asserts on timing.

    .venv/bin/python benchmarks/cpu_threads.py [--db sqlite|pg] [--n 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("REPLAYKIT_SRC") or os.path.dirname(HERE))
sys.path.append(HERE)

from workloads import three_steps  # noqa: E402

from replaykit.core.definitions import Registry  # noqa: E402
from replaykit.runtime.app import App  # noqa: E402

PG_DSN = os.environ.get("REPLAYKIT_TEST_PG_DSN") or "postgresql://postgres@127.0.0.1:5432/test"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_by_thread() -> dict[int, tuple[str, float]]:
    """Thread id -> (name, user+system CPU seconds so far)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    found = {}
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        found[int(tid)] = (names.get(int(tid), "?"), (int(fields[11]) + int(fields[12])) / TICKS)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "pg"], default="sqlite")
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    if args.db == "sqlite":
        url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "bench.db")
        options = {"synchronous": "OFF"}
    else:
        url, options = PG_DSN, {}
    with App(url, registry=Registry(), workflows=[three_steps], storage_options=options) as app:
        for i in range(300):  # warm-up: connections, prepared statements, code paths
            app.start_workflow(three_steps, i).result(timeout=60)
        before = cpu_by_thread()
        for i in range(args.n):
            app.start_workflow(three_steps, i).result(timeout=60)
        after = cpu_by_thread()
    groups: dict[str, float] = {}
    for tid, (name, seconds) in after.items():
        group = name.rstrip("0123456789_")
        groups[group] = groups.get(group, 0.0) + seconds - before.get(tid, (name, 0.0))[1]
    total = sum(groups.values())
    shown = sorted(groups.items(), key=lambda item: -item[1])
    print(
        f"{args.db}: {1000 * total / args.n:.3f} ms CPU per workflow; "
        + ", ".join(f"{name} {1000 * s / args.n:.3f}" for name, s in shown if s > 0)
    )


if __name__ == "__main__":
    main()

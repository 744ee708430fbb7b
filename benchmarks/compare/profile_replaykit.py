"""Profile replaykit on workloads 1 and 3 (sequential runs) under py-spy, on SQLite and PostgreSQL.

    .venv/bin/pip install py-spy
    .venv/bin/python -m benchmarks.compare.profile_replaykit [--n 300] [--only sqlite]

py-spy samples every thread, idle ones included (``--idle``), so waits on the database show up.
Prints, per database: samples per thread group, the top leaf frames (self time, with line) and
the top functions by inclusive time, for the threads that do the work (the caller's main thread
and the worker's ``replaykit-run`` threads), and the PostgreSQL client round trips per workflow.
The raw py-spy stacks are kept in benchmarks/results/profile-<db>.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import uuid
from collections import Counter

from .driver import REPO, RESULTS_DIR, admin, with_db

HERE = os.path.dirname(os.path.abspath(__file__))
WORK_THREADS = ("MainThread", "replaykit-run")


def thread_group(first: str) -> str:
    name = first.split(": ", 1)[1] if ": " in first else first
    return re.sub(r"[_-]?\d+$", "", name)


def summarize(path: str, top: int) -> str:
    """Per work thread group: where its samples (wall time, waits included) go.

    MainThread samples count only inside ``run_one`` (the benchmark loop, not imports or
    start-up); ``replaykit-run`` samples only inside ``Worker._run`` (an idle pool thread waiting
    for work is not counted).
    """
    groups: Counter[str] = Counter()
    leaves: dict[str, Counter[str]] = {g: Counter() for g in WORK_THREADS}
    inclusive: dict[str, Counter[str]] = {g: Counter() for g in WORK_THREADS}
    markers = {"MainThread": "run_one (", "replaykit-run": "Worker._run ("}
    with open(path) as f:
        for line in f:
            stack, _, count_s = line.rstrip().rpartition(" ")
            frames = stack.split(";")
            count = int(count_s)
            group = thread_group(frames[0])
            groups[group] += count
            if group not in markers or markers[group] not in stack:
                continue
            leaves[group][frames[-1]] += count
            for func in {re.sub(r":\d+\)$", ")", fr) for fr in frames[1:]}:
                inclusive[group][func] += count
    out = ["samples per thread group: " + ", ".join(f"{g} {c}" for g, c in groups.most_common())]
    for group in WORK_THREADS:
        total = sum(leaves[group].values()) or 1
        out.append(f"-- {group}: {total} samples in {markers[group].strip(' (')}")
        out.append(f"   top {top} leaf frames (self time, waits included):")
        out += [f"   {100 * c / total:5.1f}%  {fr}" for fr, c in leaves[group].most_common(top)]
        out.append(f"   top {top} functions by inclusive time (frames in every sample left out):")
        partial = [(fr, c) for fr, c in inclusive[group].most_common() if c < total]
        out += [f"   {100 * c / total:5.1f}%  {fr}" for fr, c in partial[:top]]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300, help="sequential workflows (+50 latency)")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument(
        "--pg-dsn",
        default=os.environ.get(
            "REPLAYKIT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    python = os.path.join(REPO, ".venv", "bin", "python")
    pyspy = os.path.join(REPO, ".venv", "bin", "py-spy")
    runner = os.path.join(HERE, "run_replaykit.py")
    os.makedirs(RESULTS_DIR, exist_ok=True)
    sizes = json.dumps({"n_seq": args.n, "n_latency": 50})
    for db in [args.only] if args.only else ["sqlite", "postgres"]:
        folder = tempfile.mkdtemp(prefix="rk-profile-")
        dbname = f"cmp_profile_{uuid.uuid4().hex[:6]}"
        if db == "sqlite":
            url = f"sqlite:///{folder}/profile.db"
        else:
            with admin(args.pg_dsn) as conn:
                conn.execute(f"CREATE DATABASE {dbname}")
            url = with_db(args.pg_dsn, dbname)
        raw = os.path.join(RESULTS_DIR, f"profile-{db}.txt")
        try:
            subprocess.run(
                [
                    pyspy,
                    "record",
                    "--threads",
                    "--idle",
                    "-r",
                    "250",
                    "--format",
                    "raw",
                    "-o",
                    raw,
                    "--",
                    python,
                    runner,
                    "profile",
                    "--db-url",
                    url,
                    "--sizes",
                    sizes,
                ],
                check=True,
                capture_output=True,
            )
            trips = subprocess.run(
                [python, runner, "commits", "--db-url", url, "--n", "100"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        finally:
            if db == "postgres":
                with admin(args.pg_dsn) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        print(f"== {db}: {args.n} + 50 sequential 3-activity workflows")
        print(summarize(raw, args.top))
        result = json.loads(trips.split("RESULT ", 1)[1])
        key = "pg_round_trips" if db == "postgres" else "sqlite_statements"
        print(f"{key} for 100 workflows, process lifetime included: {result[key]}")
        print()


if __name__ == "__main__":
    main()

"""Side-by-side benchmark of replaykit, Edda and DBOS (see benchmarks/README.md).

.venv/bin/python -m benchmarks.compare            # full run, both databases
.venv/bin/python -m benchmarks.compare --quick    # smoke run
.venv/bin/python -m benchmarks.compare --only replaykit,dbos,sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from typing import Any

import psycopg

from ..workloads import raw_postgres, raw_sqlite

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
REPO = os.path.dirname(BENCH)
PEERS_DIR = os.path.join(BENCH, ".peers")
RESULTS_DIR = os.path.join(BENCH, "results")
LIBRARIES = ("replaykit", "edda", "dbos")
DATABASES = ("sqlite", "postgres")
PEER_SPECS = {"edda": "edda-framework[postgresql]", "dbos": "dbos"}
PEER_DISTS = {"edda": "edda-framework", "dbos": "dbos"}
FULL = {"n_seq": 500, "n_burst": 500, "n_latency": 50, "n_wake": 20, "n_parked": 10_000}
QUICK = {"n_seq": 30, "n_burst": 30, "n_latency": 10, "n_wake": 3, "n_parked": 300}
COMMIT_RUN = {"full": 100, "quick": 10}

# (key, label, better): better is "higher", "lower" or "" (information only)
METRICS = [
    ("seq_wf_per_s", "(1) sequential workflows/s", "higher"),
    ("burst_wf_per_s", "(2) burst of N, workflows/s", "higher"),
    ("latency_ms_p50", "(3) start-to-result p50 ms", "lower"),
    ("latency_ms_p90", "(3) start-to-result p90 ms", "lower"),
    ("wake_ms_p50", "(4) event wake-up p50 ms", "lower"),
    ("wake_ms_max", "(4) event wake-up max ms", "lower"),
    ("commits_per_wf", "(5) commits/workflow", "lower"),
    ("write_commits_per_wf", "(5) write commits/workflow", "lower"),
    ("round_trips_per_wf", "(5) statements (SQLite) | round trips (PG)/wf", "lower"),
    ("rss_added_mb", "(6) RSS added, N parked MB", "lower"),
    ("seq_share_of_raw", "(1)x(5)/raw commits/s", ""),
    ("burst_share_of_raw", "(2)x(5)/raw commits/s", ""),
]
PHASE_FIRST_METRIC = {"main": "seq_wf_per_s", "commits": "commits_per_wf", "park": "rss_added_mb"}


def log(msg: str) -> None:
    print(f"[compare {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------- venvs


def peer_python(name: str, reinstall: bool) -> tuple[str, dict[str, str]]:
    """Create benchmarks/.peers/<name>/ and install the peer; returns (python, pinned versions).

    The first install resolves freely and writes requirements.lock (pip freeze) beside the venv;
    later runs install from that lock, so a rerun uses the same versions. --reinstall drops both.
    """
    venv = os.path.join(PEERS_DIR, name)
    lock = os.path.join(PEERS_DIR, f"{name}.lock.txt")
    if reinstall:
        shutil.rmtree(venv, ignore_errors=True)
        if os.path.exists(lock):
            os.remove(lock)
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        log(f"creating {venv}")
        subprocess.run(["python3", "-m", "venv", venv], check=True)
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    target = ["-r", lock] if os.path.exists(lock) else [PEER_SPECS[name]]
    log(f"pip install {' '.join(target)} into {venv}")
    done = subprocess.run(pip + target, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip install failed for {name}:\n{done.stderr[-2000:]}")
    frozen = subprocess.run(
        [python, "-m", "pip", "freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if not os.path.exists(lock):
        with open(lock, "w") as f:
            f.write(frozen)
    versions = dict(line.split("==", 1) for line in frozen.splitlines() if "==" in line)
    return python, versions


def replaykit_python() -> tuple[str, dict[str, str]]:
    python = os.path.join(REPO, ".venv", "bin", "python")
    rev = subprocess.run(
        ["git", "-C", REPO, "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout.strip()
    src = os.environ.get("REPLAYKIT_SRC")
    return python, {"replaykit": f"{rev}" + (f" (source {src})" if src else "")}


# ----------------------------------------------------------------------------- databases


def admin(dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=True)


def with_db(dsn: str, dbname: str) -> str:
    base, _, query = dsn.partition("?")
    base = base.rsplit("/", 1)[0] + "/" + dbname
    return base + (f"?{query}" if query else "")


def xact_commit(dsn: str, dbname: str) -> int:
    """Committed transactions of ``dbname``, read once its backends have all exited.

    A backend's counters reach pg_stat_database when it flushes (at most once a second, at the
    latest when it exits), so this waits until no session is connected to ``dbname``. The
    driver reads from its own database (``dsn``), so none of its queries land in the count.
    """
    with admin(dsn) as conn:
        deadline = time.time() + 30
        while time.time() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (dbname,)
            ).fetchone()
            if row and row[0] == 0:
                break
            time.sleep(0.1)
        time.sleep(0.2)
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (dbname,)
        ).fetchone()
        return int(row[0]) if row else 0


# ------------------------------------------------------------------------------- runners


def run_phase(
    python: str, lib: str, phase: str, url: str, sizes: dict[str, int], n: int = 0
) -> dict[str, Any]:
    cmd = [
        python,
        os.path.join(HERE, f"run_{lib}.py"),
        phase,
        "--db-url",
        url,
        "--sizes",
        json.dumps(sizes),
        "--n",
        str(n),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=REPO)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return result
    raise RuntimeError(
        f"{lib} {phase} exited {done.returncode} without a result:\n{done.stderr[-3000:]}"
    )


def commits(
    python: str, lib: str, db: str, url: str, dsn: str, dbname: str, n: int
) -> dict[str, Any]:
    """Workload 5: (run with n workflows - run with 0) / n, both whole library lifetimes."""
    runs = []
    for count in (n, 0):
        before = xact_commit(dsn, dbname) if db == "postgres" else 0
        res = run_phase(python, lib, "commits", url, {}, count)
        if db == "postgres":
            res["pg_xact_commit"] = xact_commit(dsn, dbname) - before
        runs.append(res)
    full, empty = runs
    out: dict[str, Any] = {"commit_runs": runs}
    if db == "postgres":
        out["commits_per_wf"] = (full["pg_xact_commit"] - empty["pg_xact_commit"]) / n
    else:
        out["commits_per_wf"] = (full["sqlite_commits"] - empty["sqlite_commits"]) / n
        out["write_commits_per_wf"] = (
            full["sqlite_write_commits"] - empty["sqlite_write_commits"]
        ) / n
        out["sqlite_pragmas"] = full.get("sqlite_pragmas")
    trips = full.get("pg_round_trips") if db == "postgres" else full.get("sqlite_statements")
    if trips is not None and (trips or db == "sqlite"):
        base = empty.get("pg_round_trips" if db == "postgres" else "sqlite_statements", 0)
        out["round_trips_per_wf"] = (trips - base) / n
    return out


def bench_library(
    lib: str,
    python: str,
    db: str,
    url: str,
    dsn: str,
    dbname: str,
    sizes: dict[str, int],
    n_commits: int,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    phases = [
        ("main", "workloads 1-4", lambda: run_phase(python, lib, "main", url, sizes)),
        ("commits", "workload 5", lambda: commits(python, lib, db, url, dsn, dbname, n_commits)),
        (
            "park",
            f"workload 6 ({sizes['n_parked']} parked)",
            lambda: run_phase(python, lib, "park", url, sizes),
        ),
    ]
    for phase, label, run in phases:  # a failing phase does not hide the others
        log(f"{lib} on {db}: {label}")
        try:
            out.update(run())
        except Exception as exc:
            log(f"{lib} on {db}: {label} FAILED: {exc}")
            out[f"{phase}_error"] = str(exc)[-1500:]
    return out


def run_database(
    db: str, libs: dict[str, str], sizes: dict[str, int], n_commits: int, dsn: str, folder: str
) -> dict[str, Any]:
    section: dict[str, Any] = {"database": db, "libraries": {}}
    tag = uuid.uuid4().hex[:6]
    if db == "sqlite":
        raw_path = os.path.join(folder, "raw.db")
        section["raw_commits_per_s"] = [raw_sqlite(raw_path, 500)]
    else:
        raw_db = f"cmp_raw_{tag}"
        with admin(dsn) as conn:
            conn.execute(f"CREATE DATABASE {raw_db}")
        section["raw_commits_per_s"] = [raw_postgres(with_db(dsn, raw_db), 500)]
    for lib, python in libs.items():
        dbname = f"cmp_{lib}_{tag}"
        if db == "sqlite":
            url = f"sqlite:///{os.path.join(folder, f'{lib}.db')}"
        else:
            with admin(dsn) as conn:
                conn.execute(f"CREATE DATABASE {dbname}")
            url = with_db(dsn, dbname)
        try:
            section["libraries"][lib] = bench_library(
                lib, python, db, url, dsn, dbname, sizes, n_commits
            )
        except Exception as exc:  # keep going with the other libraries
            log(f"{lib} on {db} FAILED: {exc}")
            section["libraries"][lib] = {"error": str(exc)[-1500:]}
        finally:
            if db == "postgres":
                with admin(dsn) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    # the database's own limit again after the libraries ran: the machine is shared
    if db == "sqlite":
        section["raw_commits_per_s"].append(raw_sqlite(os.path.join(folder, "raw.db"), 500))
    else:
        section["raw_commits_per_s"].append(raw_postgres(with_db(dsn, raw_db), 500))
        with admin(dsn) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {raw_db} WITH (FORCE)")
    raw = sum(section["raw_commits_per_s"]) / len(section["raw_commits_per_s"])
    for res in section["libraries"].values():
        for rate, share in (("seq_wf_per_s", "seq"), ("burst_wf_per_s", "burst")):
            if rate in res and "commits_per_wf" in res:
                res[f"{share}_share_of_raw"] = res[rate] * res["commits_per_wf"] / raw
    return section


# -------------------------------------------------------------------------------- output


def fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def table(section: dict[str, Any]) -> str:
    libs = section["libraries"]
    raw = section["raw_commits_per_s"]
    lines = [
        f"== {section['database']}: raw single-row commits/s "
        + " / ".join(f"{r:.0f}" for r in raw)
        + " (measured before / after the libraries ran)",
        f"{'metric':<46}{'replaykit':>11}{'edda':>11}{'dbos':>11}{'best peer':>11}"
        f"{'rk/peer':>9}  ratio reads",
    ]
    for key, label, better in METRICS:
        cells = [libs.get(lib, {}).get(key) for lib in LIBRARIES]
        peers = [v for v in cells[1:] if isinstance(v, int | float)]
        best = None
        if peers and better:
            best = max(peers) if better == "higher" else min(peers)
        ratio = cells[0] / best if isinstance(cells[0], int | float) and best else None
        reads = {"higher": ">1: replaykit better", "lower": "<1: replaykit better"}.get(better, "")
        row = f"{label:<46}" + "".join(f"{fmt(c):>11}" for c in cells)
        row += f"{fmt(best):>11}{fmt(ratio):>9}  {reads if ratio is not None else ''}"
        lines.append(row)
        for lib, res in libs.items():
            for phase in ("main", "commits", "park"):
                if key == PHASE_FIRST_METRIC[phase] and f"{phase}_error" in res:
                    lines_ = res[f"{phase}_error"].strip().splitlines()
                    errs = [ln for ln in lines_ if "Error" in ln or "Exception" in ln]
                    last = (errs or lines_)[-1][:150]
                    lines.append(f"   {lib}: {phase} phase failed: {last}")
            workload_error = res.get(key.split("_", 1)[0] + "_error")
            if workload_error and key in ("burst_wf_per_s", "seq_wf_per_s"):
                lines.append(f"   {lib}: {workload_error[:160]}")
    return "\n".join(lines)


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def show(paths: list[str]) -> None:
    merged: dict[str, dict[str, Any]] = {}
    for path in paths:
        with open(path) as f:
            report = json.load(f)
        print(
            f"{path}: {report['mode']} run of {report['started']}, load average "
            f"{report['load_average_before']} / {report.get('load_average_after')}"
        )
        for section in report["sections"]:
            into = merged.setdefault(
                section["database"], {**section, "libraries": {}, "raw_commits_per_s": []}
            )
            into["libraries"].update(section["libraries"])
            into["raw_commits_per_s"] += section["raw_commits_per_s"]
    for section in merged.values():
        print(table(section))
        print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (smoke run)")
    parser.add_argument(
        "--only", default="", help="comma list of libraries and/or databases, e.g. replaykit,sqlite"
    )
    parser.add_argument(
        "--pg-dsn",
        default=os.environ.get(
            "REPLAYKIT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--reinstall", action="store_true", help="recreate the peers' venvs")
    parser.add_argument("--parked", type=int, help="override the instances parked in (6)")
    parser.add_argument("--wake", type=int, help="override the event wake-ups measured in (4)")
    parser.add_argument("--json", help="also write the JSON here (default: results/compare-*.json)")
    parser.add_argument(
        "--show",
        nargs="+",
        metavar="JSON",
        help="print the tables of saved runs instead of running; with several files, a later "
        "file's libraries replace an earlier one's on the same database",
    )
    args = parser.parse_args()
    if args.show:
        show(args.show)
        return
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    unknown = only - set(LIBRARIES) - set(DATABASES)
    if unknown:
        parser.error(f"--only: unknown {sorted(unknown)}; pick from {LIBRARIES + DATABASES}")
    libs = [lib for lib in LIBRARIES if not only & set(LIBRARIES) or lib in only]
    dbs = [db for db in DATABASES if not only & set(DATABASES) or db in only]
    sizes = dict(QUICK if args.quick else FULL)
    if args.parked:
        sizes["n_parked"] = args.parked
    if args.wake:
        sizes["n_wake"] = args.wake
    n_commits = COMMIT_RUN["quick" if args.quick else "full"]

    pythons: dict[str, str] = {}
    versions: dict[str, dict[str, str]] = {}
    for lib in libs:
        try:
            if lib == "replaykit":
                pythons[lib], versions[lib] = replaykit_python()
            else:
                pythons[lib], frozen = peer_python(lib, args.reinstall)
                versions[lib] = frozen
            main_dist = PEER_DISTS.get(lib, "replaykit")
            log(f"{lib}: {main_dist} {versions[lib].get(main_dist)}")
        except Exception as exc:
            log(f"{lib}: cannot be installed here, skipped: {exc}")
    report: dict[str, Any] = {
        "started": datetime.now().isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "sizes": sizes,
        "commit_run_workflows": n_commits,
        "load_average_before": load_average(),
        "cpus": os.cpu_count(),
        "versions": versions,
        "sections": [],
    }
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = args.json or os.path.join(
        RESULTS_DIR, f"compare-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    )
    folder = tempfile.mkdtemp(prefix="rk-compare-")
    try:
        for db in dbs:
            report["sections"].append(
                run_database(db, pythons, sizes, n_commits, args.pg_dsn, folder)
            )
            print(table(report["sections"][-1]), flush=True)
            print(flush=True)
            report["load_average_after"] = load_average()
            with open(path, "w") as f:  # after each database, so a late failure loses nothing
                json.dump(report, f, indent=2)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"load average before/after: {report['load_average_before']} / "
        f"{report.get('load_average_after')} on {report['cpus']} CPUs"
    )
    for lib, v in versions.items():
        print(f"{lib}: {v.get(PEER_DISTS.get(lib, 'replaykit'))}")
    print(f"JSON: {path}")


if __name__ == "__main__":
    main()

"""Replay throughput: a 10,000-step history replayed with ``Interpreter.feed(..., replaying=True)``.

Prints figures; never asserts on timing (target: >= 250,000 events/s for replay).

    .venv/bin/python benchmarks/bench_replay.py [--steps 10000] [--repeats 7] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
import tracemalloc
from collections.abc import Generator
from typing import Any

from replaykit import Command, Interpreter, activity, workflow
from replaykit.core.history import Event, decode_history, encode_history
from replaykit.testing import WorkflowEnvironment

TARGET = 250_000


@activity(name="bench_step")
def bench_step(ctx: Any, i: int) -> int:
    return i + 1


@workflow(name="bench_loop")
def bench_loop(ctx: Any, steps: int) -> Generator[Command, Any, int]:
    total = 0
    for i in range(steps):
        total += yield bench_step(i)
    return total


def build_history(steps: int) -> list[Event]:
    run = WorkflowEnvironment().start(bench_loop, steps, instance_id="bench-1")
    run.run_to_completion()
    assert run.status == "completed", run.decision
    return run.history


def replay_once(history: list[Event]) -> float:
    interp = Interpreter(bench_loop, instance_id="bench-1")
    begin = time.perf_counter()
    decision = interp.feed(history, replaying=True)
    elapsed = time.perf_counter() - begin
    assert decision.status == "completed"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one replay")
    args = parser.parse_args()

    begin = time.perf_counter()
    history = build_history(args.steps)
    n = len(history)
    print(f"recorded {n:,} events with WorkflowEnvironment in {time.perf_counter() - begin:.2f} s")

    replay_once(history)  # warm-up
    times = [replay_once(history) for _ in range(args.repeats)]
    median = statistics.median(times)
    rate = n / median
    verdict = "meets" if rate >= TARGET else "BELOW"
    print(
        f"replay:  median {median * 1000:.1f} ms  best {min(times) * 1000:.1f} ms  "
        f"-> {rate:,.0f} events/s ({verdict} target {TARGET:,})"
    )

    tracemalloc.start()
    replay_once(history)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"replay:  peak traced memory {peak / 1e6:.2f} MB ({peak / n:.0f} B/event)")

    data = encode_history(history)  # type: ignore[arg-type]
    decode_times = []
    for _ in range(args.repeats):
        begin = time.perf_counter()
        decoded = decode_history(data)
        decode_times.append(time.perf_counter() - begin)
    assert len(decoded) == n
    decode_median = statistics.median(decode_times)
    print(
        f"decode:  {len(data) / 1e6:.2f} MB JSON, median {decode_median * 1000:.1f} ms "
        f"-> {n / decode_median:,.0f} events/s"
    )

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        replay_once(history)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()

"""The worker's run threads (replaykit.runtime.run_pool): calls handed to idle threads."""

from __future__ import annotations

import logging
import threading

import pytest

from replaykit.runtime.run_pool import RunPool


def test_a_submitted_call_runs_on_a_named_pool_thread() -> None:
    pool = RunPool(2, "rk-test")
    ran: list[str] = []
    done = threading.Event()

    def call(tag: str) -> None:
        ran.append(f"{tag}@{threading.current_thread().name}")
        done.set()

    pool.submit(call, "a")
    assert done.wait(5)
    pool.shutdown()
    assert ran == ["a@rk-test_0"]


def test_threads_start_on_demand_up_to_the_size_and_are_reused() -> None:
    pool = RunPool(3, "rk-test")
    for _ in range(20):  # one after the other: one thread does them all
        done = threading.Event()
        pool.submit(done.set)
        assert done.wait(5)
    assert len(pool._threads) == 1
    gate, started = threading.Event(), threading.Semaphore(0)

    def blocked() -> None:
        started.release()
        gate.wait(5)

    for _ in range(5):  # five at once: never more than three threads
        pool.submit(blocked)
    for _ in range(3):
        assert started.acquire(timeout=5)
    assert len(pool._threads) == 3
    assert not started.acquire(timeout=0.1)  # the other two wait for a free thread
    gate.set()
    pool.shutdown()
    assert started.acquire(timeout=0) and started.acquire(timeout=0)


def test_shutdown_runs_what_was_queued_then_ends_the_threads() -> None:
    pool = RunPool(1, "rk-test")
    gate = threading.Event()
    ran: list[int] = []
    pool.submit(gate.wait, 5)
    for i in range(5):
        pool.submit(ran.append, i)
    gate.set()
    pool.shutdown()
    assert ran == [0, 1, 2, 3, 4]
    assert not any(t.is_alive() for t in pool._threads)
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(ran.append, 9)


def test_a_call_that_raises_is_logged_and_the_thread_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = RunPool(1, "rk-test")

    def broken() -> None:
        raise ValueError("boom")

    done = threading.Event()
    with caplog.at_level(logging.ERROR, logger="replaykit.worker"):
        pool.submit(broken)
        pool.submit(done.set)
        assert done.wait(5)
    pool.shutdown()
    assert "boom" in caplog.text
    assert len(pool._threads) == 1

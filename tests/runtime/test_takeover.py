"""Worker processes killed with SIGKILL in the middle of an activity, with the App's default
settings (a 60 s lease): the instance's next step is taken up by another worker, or by the same
program restarted, in a few seconds, long before the lease would end (death is detected, not
waited out). The figures over 20 kills per database: benchmarks/bench_takeover.py."""

from __future__ import annotations

import pytest

from benchmarks.bench_takeover import takeover_times
from replaykit.runtime.app import App

pytestmark = pytest.mark.slow

#: well before the default lease (60 s) ends, with room for a loaded test machine
BOUND = 8.0


def test_defaults_keep_a_lease_that_death_detection_beats() -> None:
    assert App("sqlite://:memory:").lease_seconds == 60.0


@pytest.mark.parametrize("case", ["survivor", "restart"])
def test_a_killed_workers_instance_is_taken_over_long_before_its_lease_ends(
    database_url: str, case: str
) -> None:
    times = takeover_times(database_url, case, kills=3, timeout=BOUND + 5)
    assert len(times) == 3
    assert max(times) < BOUND, f"takeover took {times} s (lease: 60 s)"

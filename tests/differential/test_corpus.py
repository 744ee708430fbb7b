"""The corpus, run in memory and in App on every database: identical histories and outcomes."""

from __future__ import annotations

from typing import Any

import pytest

from .corpus import scenarios
from .harness import Outcome, Scenario, assert_same, check_expectations, run_app, run_memory

SCENARIOS = scenarios()
_memory: dict[str, Outcome] = {}


def memory_outcome(scenario: Scenario) -> Outcome:
    if scenario.name not in _memory:
        _memory[scenario.name] = run_memory(scenario)
    return _memory[scenario.name]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario_reaches_the_statuses_it_was_written_for(scenario: Scenario) -> None:
    check_expectations(scenario, memory_outcome(scenario))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_database_history_is_the_memory_history(
    scenario: Scenario, backend: str, database_url: str, app_options: dict[str, Any]
) -> None:
    memory = memory_outcome(scenario)
    assert_same(memory, run_app(scenario, database_url, **app_options), backend)

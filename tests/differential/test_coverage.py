"""The corpus uses every command and reaches every outcome: a new command type, history event or
recorded kind fails here until a corpus scenario exercises it."""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

import replaykit
from replaykit.core.commands import Command
from replaykit.core.history import HistoryEvent

from .test_corpus import SCENARIOS, memory_outcome

CORPUS = Path(__file__).parent / "corpus"


def _names_used_in_corpus() -> set[str]:
    names: set[str] = set()
    for path in CORPUS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.Attribute):
                names.add(node.attr)
    return names


def _seen(field: str) -> set[str]:
    found: set[str] = set()
    for scenario in SCENARIOS:
        for inst in memory_outcome(scenario).instances.values():
            for events in inst.runs:
                found.update(str(e[field]) for e in events if field in e)
    return found


def test_every_exported_command_is_yielded_by_a_corpus_workflow() -> None:
    exported = {
        name: obj
        for name, obj in vars(replaykit).items()
        if name in replaykit.__all__
        and inspect.isclass(obj)
        and issubclass(obj, Command)
        and obj is not Command
    }
    made_otherwise = {"ActivityCall": "d_add", "StartChild": "child"}  # by an activity / .child()
    used = _names_used_in_corpus()
    missing = sorted(
        name
        for name, cls in exported.items()
        if name not in used and cls.__name__ not in used and made_otherwise.get(name) not in used
    )
    assert not missing, f"no corpus scenario uses {missing}: add one (tests/differential/corpus)"


def test_every_history_event_type_occurs_in_a_corpus_history() -> None:
    every = {cls.__name__ for cls in typing.get_args(HistoryEvent)}
    missing = sorted(every - _seen("e"))
    assert not missing, f"no corpus history has {missing}"


def test_every_recorded_kind_and_final_status_occurs() -> None:
    kinds = {"Now", "Uuid", "Random", "SideEffect", "Patched"}
    kinds |= {"Publish", "SendTo", "Subscribe", "Unsubscribe", "StartChild"}
    assert kinds <= _seen("kind"), f"missing kinds: {sorted(kinds - _seen('kind'))}"
    statuses = {s for sc in SCENARIOS for s in memory_outcome(sc).statuses().values()}
    assert {"completed", "failed", "cancelled", "waiting"} <= statuses

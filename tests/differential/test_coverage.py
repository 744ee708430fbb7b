"""The corpus uses every command and reaches every outcome: a new command type, history event or
recorded kind fails here until a corpus scenario exercises it."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import replaykit
from replaykit import App
from replaykit.core.commands import Command
from replaykit.core.definitions import Workflow
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


def _keyword_options(*functions: Callable[..., Any]) -> set[str]:
    return {
        p.name
        for fn in functions
        for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def _stimulus_fields_set() -> set[str]:
    """The fields some corpus stimulus sets to a value other than its default (a stimulus's
    fields are named after the client call's options)."""
    found: set[str] = set()
    for scenario in SCENARIOS:
        for stimulus in scenario.script:
            for f in dataclasses.fields(stimulus):
                if f.default is dataclasses.MISSING or getattr(stimulus, f.name) != f.default:
                    found.add(f.name)
    return found


def _child_keywords_in_corpus() -> set[str]:
    found: set[str] = set()
    for path in CORPUS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("child", "start_child", "StartChild"):
                found.update(k.arg for k in node.keywords if k.arg is not None)
    return found


def test_every_start_option_is_set_by_a_corpus_script() -> None:
    options = _keyword_options(App.start_workflow, App.enqueue)
    missing = sorted(options - _stimulus_fields_set())
    assert not missing, f"no corpus script starts an instance with {missing}"


def test_every_child_option_is_passed_by_a_corpus_workflow() -> None:
    options = _keyword_options(Workflow.child, Workflow.start_child)
    missing = sorted(options - _child_keywords_in_corpus())
    assert not missing, f"no corpus workflow starts a child with {missing}"

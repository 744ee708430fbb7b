"""The corpus of the differential suite: every module here defines ``SCENARIOS``, a list of
:class:`~tests.differential.harness.Scenario`, found by :func:`scenarios` (adding a workflow to
the suite is adding one module, or one entry to a module's list)."""

from __future__ import annotations

import importlib
import pkgutil

from ..harness import Scenario


def scenarios() -> list[Scenario]:
    """Every scenario of every corpus module, in module order; names are unique."""
    found: list[Scenario] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.extend(module.SCENARIOS)
    names = [s.name for s in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"scenario names used twice: {duplicates}"
    return found

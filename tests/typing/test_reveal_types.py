"""Inferred public types, checked with mypy ``reveal_type`` (msgspec's tests/typing idea).

Every ``reveal_type(...)  # R: <type>`` line in ``snippets/*.py`` must reveal exactly ``<type>``,
and mypy --strict must report nothing else.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

SNIPPETS = sorted((Path(__file__).parent / "snippets").glob("*.py"))
REVEALED = re.compile(r'^(?P<file>[^:]+):(?P<line>\d+): note: Revealed type is "(?P<type>.*)"$')


def expected_reveals(path: Path) -> dict[int, str]:
    found: dict[int, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if "reveal_type(" in line and "# R: " in line:
            found[number] = line.split("# R: ", 1)[1].strip()
    return found


@pytest.fixture(scope="module")
def mypy_output() -> list[str]:
    stdout, stderr, _ = api.run(
        ["--strict", "--no-error-summary", "--show-traceback", *map(str, SNIPPETS)]
    )
    assert not stderr, stderr
    return stdout.splitlines()


def test_there_are_snippets() -> None:
    assert SNIPPETS
    assert all(expected_reveals(p) for p in SNIPPETS)


@pytest.mark.parametrize("path", SNIPPETS, ids=lambda p: p.name)
def test_revealed_types_match(path: Path, mypy_output: list[str]) -> None:
    revealed: dict[int, str] = {}
    for line in mypy_output:
        match = REVEALED.match(line)
        if match and Path(match["file"]).name == path.name:
            # the snippet's own module name depends on how mypy finds it: drop it
            revealed[int(match["line"])] = same_spelling(
                re.sub(rf"[\w.]*\b{path.stem}\.", "", match["type"])
            )
    assert revealed == {n: same_spelling(t) for n, t in expected_reveals(path).items()}


def same_spelling(revealed: str) -> str:
    """mypy spells a gradual ParamSpec ``...`` on a fresh run and ``[*Any, **Any]`` when it reads
    the type from its cache: the same type, so compare one spelling."""
    return revealed.replace("[*Any, **Any]", "...")


def test_snippets_have_no_type_errors(mypy_output: list[str]) -> None:
    errors = [line for line in mypy_output if ": error:" in line]
    assert errors == []

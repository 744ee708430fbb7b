"""A workflow's code version (issue 13): given, or a hash of its source."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from replaykit import Command, Sleep, workflow
from replaykit.core.definitions import Workflow, code_version


def first(ctx: Any) -> Generator[Command, Any, None]:
    yield Sleep(1)


def second(ctx: Any) -> Generator[Command, Any, None]:
    yield Sleep(2)


def test_the_default_version_is_a_hash_of_the_source() -> None:
    assert Workflow(first).version == code_version(first) == Workflow(first, name="x").version
    assert code_version(first) != code_version(second)
    assert len(code_version(first)) == 12 and int(code_version(first), 16) >= 0


def test_code_without_source_is_hashed_from_its_compiled_code() -> None:
    scope: dict[str, Any] = {"Sleep": Sleep}
    exec("def made(ctx):\n    yield Sleep(1)\n", scope)
    exec("def other(ctx):\n    yield Sleep(5)\n", scope)
    assert code_version(scope["made"]) != code_version(scope["other"])
    assert code_version(scope["made"]) == code_version(scope["made"])


def test_a_given_version_is_kept_and_checked() -> None:
    @workflow(name="tv_given", version="2")
    def given(ctx: Any) -> Generator[Command, Any, None]:
        yield Sleep(1)

    assert given.version == "2"
    for bad in ("", "  ", "x" * 101, 2):
        with pytest.raises(TypeError, match="version must be a non-empty string"):
            Workflow(first, version=bad)  # type: ignore[arg-type]

"""The tool chain (ruff format, ruff check, mypy --strict) runs as part of the test suite.

Deselect with ``-m "not toolchain"`` for a quick run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINTED = ["replaykit", "storage_adapters", "tests", "benchmarks"]

pytestmark = pytest.mark.toolchain


def _existing(paths: list[str]) -> list[str]:
    return [p for p in paths if (ROOT / p).exists()]


def _run(*args: str) -> None:
    cmd = [sys.executable, "-m", *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    output = f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}"
    if proc.returncode != 0:
        pytest.fail(f"exit code {proc.returncode}\n{output}", pytrace=False)


def test_ruff_format() -> None:
    _run("ruff", "format", "--check", *_existing(LINTED))


def test_ruff_check() -> None:
    _run("ruff", "check", *_existing(LINTED))


def test_mypy_strict() -> None:
    if not (ROOT / "replaykit").exists():
        pytest.skip("replaykit/ does not exist yet")
    _run("mypy", "--strict", "replaykit")

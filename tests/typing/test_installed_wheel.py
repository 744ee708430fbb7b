"""The built wheel is typed for its users: ``py.typed`` ships, and ``mypy --strict`` accepts a
small user program checked against the wheel *installed* into a scratch directory (not against
this source tree), with the public types revealed as declared.

Builds the wheel (``pip wheel``), installs it with ``pip install --target`` and runs mypy with
that directory first on ``PYTHONPATH`` (mypy treats it like site-packages: PEP 561 applies).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a wheel build, an install and a fresh mypy run: about 15-30 s

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = Path(__file__).parent / "user_program" / "user_app.py"
REVEALED = re.compile(r'^[^:]+:(?P<line>\d+): note: Revealed type is "(?P<type>.*)"$')


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, f"{args}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the wheel built from this tree, installed (without dependencies:
    those of the running environment are used)."""
    base = tmp_path_factory.mktemp("wheel")
    isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-build-isolation"]
    run("-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w", str(base), str(ROOT), cwd=base)
    [wheel] = base.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "replaykit/py.typed" in names and "storage_adapters/py.typed" in names
    target = base / "site"
    run("-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel), cwd=base)
    return target


def test_mypy_strict_accepts_a_user_program_against_the_installed_wheel(
    installed: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(installed), "MYPY_CACHE_DIR": str(tmp_path / "cache")}
    found = run("-c", "import replaykit; print(replaykit.__file__)", cwd=tmp_path, env=env)
    assert Path(found.strip()).is_relative_to(installed)  # the wheel, not this source tree
    program = tmp_path / PROGRAM.name
    program.write_text(PROGRAM.read_text(encoding="utf-8"), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", program.name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    notes = proc.stdout.splitlines()
    problems = [line for line in notes if not REVEALED.match(line)]
    assert proc.returncode == 0 and not problems, proc.stdout + proc.stderr
    revealed = {int(m["line"]): m["type"] for m in map(REVEALED.match, notes) if m}
    expected = {
        number: line.split("# R: ", 1)[1].strip()
        for number, line in enumerate(PROGRAM.read_text(encoding="utf-8").splitlines(), start=1)
        if "reveal_type(" in line and "# R: " in line
    }
    assert expected and revealed == expected

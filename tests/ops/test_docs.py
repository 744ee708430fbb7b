"""The docs run: every ```python block of the pages below (in order, as one script per page, in
a fresh process and directory), and every example script under docs/examples/ owned here.

A block preceded by a line ``<!-- docs-test: skip (why) -->`` is not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
ALL_PAGES = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
PAGES = [
    "getting-started.md",
    "deployment.md",
    "operations.md",
    "observability.md",
    "versioning.md",
    "fork.md",
    "schedules.md",
    "queues.md",
    "deadlines-and-children.md",
]
EXAMPLES = ["order_saga.py", "payment_timeout.py", "channel_workers.py", "recurring_counter.py"]
SKIP = "<!-- docs-test: skip"
FENCE = re.compile(r"^```python\n(.*?)^```\n", re.S | re.M)


def python_blocks(markdown: str) -> list[str]:
    """The python blocks of a page, without those marked to be skipped."""
    blocks = []
    for match in FENCE.finditer(markdown):
        before = markdown[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if not before.startswith(SKIP):
            blocks.append(match.group(1))
    return blocks


def test_the_block_extractor_honours_the_skip_marker() -> None:
    page = "a\n```python\nx = 1\n```\n<!-- docs-test: skip (no) -->\n```python\nboom\n```\n"
    assert python_blocks(page) == ["x = 1\n"]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("REPLAYKIT_DATABASE", None)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )


@pytest.mark.parametrize("page", PAGES)
def test_docs_page_code_runs(page: str, tmp_path: Path) -> None:
    blocks = python_blocks((ROOT / "docs" / page).read_text(encoding="utf-8"))
    assert blocks, f"{page} has no python blocks"
    script = tmp_path / "page.py"
    script.write_text("\n\n".join(blocks), encoding="utf-8")
    result = _run([str(script)], tmp_path)
    assert result.returncode == 0, f"{page}:\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_runs(example: str, tmp_path: Path) -> None:
    result = _run([str(ROOT / "docs" / "examples" / example)], tmp_path)
    assert result.returncode == 0, f"{example}:\n{result.stdout}\n{result.stderr}"
    assert "OK" in result.stdout.splitlines()[-1]


def all_python_blocks(markdown: str) -> list[str]:
    """Every python block of a page, skipped ones included."""
    return [match.group(1) for match in FENCE.finditer(markdown)]


@pytest.mark.parametrize("page", ALL_PAGES)
def test_every_python_block_in_the_docs_at_least_parses(page: str) -> None:
    """Blocks marked skip (fragments, or needing a server the docs cannot assume) still have
    to be valid Python; the rest of each page's blocks run in the tests above."""
    import ast

    for block in all_python_blocks((DOCS / page).read_text(encoding="utf-8")):
        ast.parse(block)

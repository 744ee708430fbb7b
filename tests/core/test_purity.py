"""The core is pure: no I/O, no clocks, no randomness, no threads (DESIGN.md section 2).

This syntax-tree check walks every module under ``replaykit/core/`` and rejects forbidden imports
(absolute or relative) and wall-clock calls such as ``datetime.now()``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "replaykit" / "core"
CORE_PACKAGE = "replaykit.core"

FORBIDDEN_MODULES = frozenset(
    {
        "asyncio",
        "threading",
        "multiprocessing",
        "concurrent",
        "sqlite3",
        "sqlite_utils",
        "psycopg",
        "psycopg_pool",
        "time",
        "random",
        "secrets",
        "socket",
        "os",
        "subprocess",
        "uuid",  # uuid generation is the shell's job (the Uuid() command)
        "replaykit.runtime",
        "replaykit.integrations",
        "replaykit.storage",
        "storage_adapters",
    }
)

FORBIDDEN_CALLS = frozenset(
    {
        ("datetime", "now"),
        ("datetime", "utcnow"),
        ("datetime", "today"),
        ("date", "today"),
    }
)


def _forbidden(module: str) -> str | None:
    """Return the forbidden prefix that ``module`` falls under, if any."""
    for bad in FORBIDDEN_MODULES:
        if module == bad or module.startswith(bad + "."):
            return bad
    return None


def _resolve_relative(package: str, module: str | None, level: int) -> str:
    parts = package.split(".")
    base = parts[: len(parts) - (level - 1)] if level > 1 else parts
    return ".".join([*base, module] if module else base)


def _imported_modules(node: ast.AST, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = (
            _resolve_relative(package, node.module, node.level)
            if node.level
            else (node.module or "")
        )
        # `from replaykit import runtime` imports replaykit.runtime
        return [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return []


def _datetime_aliases(tree: ast.AST) -> dict[str, str]:
    """Map local names to ``datetime``/``date`` (``from datetime import datetime as DT``)."""
    aliases = {"datetime": "datetime", "date": "date"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "datetime":
            for alias in node.names:
                if alias.name in ("datetime", "date"):
                    aliases[alias.asname or alias.name] = alias.name
    return aliases


def _call_name(node: ast.Call, aliases: dict[str, str]) -> tuple[str, str] | None:
    func = node.func
    if not isinstance(func, ast.Attribute):
        return None
    target = func.value
    if isinstance(target, ast.Name):
        return (aliases.get(target.id, target.id), func.attr)
    if isinstance(target, ast.Attribute):  # datetime.datetime.now()
        return (target.attr, func.attr)
    return None


def check_source(source: str, filename: str, package: str = CORE_PACKAGE) -> list[str]:
    """Return one ``file:line: message`` string per purity violation in ``source``.

    ``package`` is the package the module lives in (used to resolve relative imports).
    """
    problems: list[str] = []
    tree = ast.parse(source, filename=filename)
    aliases = _datetime_aliases(tree)
    for node in ast.walk(tree):
        for module in _imported_modules(node, package):
            bad = _forbidden(module)
            if bad is not None:
                problems.append(
                    f"{filename}:{node.lineno}: core imports {module!r} (forbidden: {bad})"
                )
                break
        if isinstance(node, ast.Call):
            name = _call_name(node, aliases)
            if name in FORBIDDEN_CALLS:
                problems.append(
                    f"{filename}:{node.lineno}: core reads the wall clock with "
                    f"{name[0]}.{name[1]}() (use the Now() command)"
                )
    return problems


def _package_of(path: Path) -> str:
    """Both ``replaykit/core/x.py`` and ``replaykit/core/__init__.py`` are in ``replaykit.core``."""
    return ".".join(path.relative_to(ROOT).parent.parts)


def test_core_is_pure() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert files, f"no modules found under {CORE}"
    problems: list[str] = []
    for path in files:
        problems += check_source(
            path.read_text(encoding="utf-8"),
            str(path.relative_to(ROOT)),
            package=_package_of(path),
        )
    assert not problems, "replaykit/core must stay pure:\n" + "\n".join(problems)


def test_checker_catches_violations() -> None:
    source = (
        "import asyncio\n"
        "from datetime import datetime; datetime.now()\n"
        "from ..runtime import worker\n"
        "from replaykit import storage\n"
        "from . import codec\n"
        "import datetime as dt\n"
        "from datetime import date as D\n"
        "D.today()\n"
        "dt.datetime.utcnow()\n"
    )
    problems = check_source(source, "fake.py", package="replaykit.core")
    assert any("fake.py:1:" in p and "asyncio" in p for p in problems), problems
    assert any("fake.py:2:" in p and "datetime.now()" in p for p in problems), problems
    assert any("fake.py:3:" in p and "replaykit.runtime" in p for p in problems), problems
    assert any("fake.py:4:" in p and "replaykit.storage" in p for p in problems), problems
    assert any("fake.py:8:" in p and "date.today()" in p for p in problems), problems
    assert any("fake.py:9:" in p and "datetime.utcnow()" in p for p in problems), problems
    assert len(problems) == 6, problems

"""The test suite's own layout: test support lives in conftest.py files and tests/support/, and no
module imports from a ``test_*`` module (a test module is collected, never a library: importing one
runs its module-level code twice and hides shared helpers where nobody looks for them)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
# Helper modules outside tests/support/ that are still waiting to move there (their directory is
# being reworked elsewhere); nothing new may join them.
NOT_YET_MOVED = {"tests/rules/engine_harness.py", "tests/rules/bench_engine.py"}
# A dotted tests module named in a string, e.g. the code a test hands to ``python -c`` or ``-m``.
DOTTED = re.compile(r"\btests(?:\.\w+)+")


def _modules() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _test_module(dotted: str) -> Path | None:
    """The ``test_*.py`` file a dotted name imports, if it is one."""
    path = ROOT.joinpath(*dotted.split("."))
    file = path.with_suffix(".py")
    return file if file.name.startswith("test_") and file.is_file() else None


def _package_of(path: Path) -> list[str]:
    """The package a module's relative imports start from (for ``__init__.py``, its own)."""
    return list(path.relative_to(ROOT).with_suffix("").parts)[:-1]


def _imported(path: Path, tree: ast.Module) -> list[tuple[int, str]]:
    """(line, dotted name) of every module an ``import`` or ``from`` statement may load, and of every
    dotted ``tests.…`` name in a string."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(path)[: len(_package_of(path)) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            out.append((node.lineno, module))
            out += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            out += [(node.lineno, m.group(0)) for m in DOTTED.finditer(node.value)]
    return out


def test_no_module_imports_a_test_module() -> None:
    found = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, name in _imported(path, tree):
            target = _test_module(name)
            if target is not None:
                found.append(f"{_rel(path)}:{line} imports {_rel(target)}")
    assert not found, "move what is shared into tests/support/ or a conftest.py:\n" + "\n".join(found)


def test_helper_modules_live_in_tests_support() -> None:
    stray = [
        _rel(p) for p in _modules()
        if not p.name.startswith("test_") and p.name not in ("conftest.py", "__init__.py")
        and "support" not in p.relative_to(TESTS).parts[:1] and _rel(p) not in NOT_YET_MOVED
    ]
    assert not stray, f"helper modules belong in tests/support/: {stray}"


def test_the_check_sees_every_form_of_importing_a_test_module() -> None:
    """The walk above is not vacuous. (The probe names this very module through a placeholder, so
    that this file's own strings import nothing.)"""
    probe = TESTS / "support" / "probe.py"  # never written: only its place in the tree matters
    source = """
import tests.MOD
from tests import MOD
from tests.MOD import TESTS
from .. import MOD
CHILD = "from tests.MOD import TESTS"
""".replace("MOD", Path(__file__).stem)
    lines = {line for line, name in _imported(probe, ast.parse(source)) if _test_module(name)}
    assert lines == {2, 3, 4, 5, 6}

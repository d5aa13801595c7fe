"""Nothing installed imports `tests`, and nothing installed edits `sys.path`: every .py under the
installed packages (adaptive_rag/, ingest/, gatekeeper/, eval/) is parsed (ast, nothing imported)
and may not `import tests`, `from tests... import`, `importlib.import_module("tests...")` /
`__import__("tests...")`, run `-m tests...` in a child process, or insert into / append to / assign
`sys.path`. What the benchmarks share with the tests (fakes, the fake-model server, a private
PostgreSQL server) lives in adaptive_rag/testing/, which is installed."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INSTALLED = ("adaptive_rag", "ingest", "gatekeeper", "eval")


def _is_tests(name: str | None) -> bool:
    return bool(name) and (name == "tests" or name.startswith("tests."))


def _is_sys_path(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name) \
        and node.value.id == "sys"


def problems(source: str, where: str = "<string>") -> list[str]:
    """What in `source` imports `tests` or changes sys.path, one line each (`where:line: what`)."""
    found = []
    for node in ast.walk(ast.parse(source, filename=where)):
        line = f"{where}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{line}: import {a.name}" for a in node.names if _is_tests(a.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and _is_tests(node.module):
                found.append(f"{line}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            strings = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if name in ("import_module", "__import__", "find_spec", "run_module") and any(map(_is_tests, strings)):
                found.append(f"{line}: {name}({strings[0]!r})")
            if isinstance(func, ast.Attribute) and _is_sys_path(func.value) and func.attr in (
                    "insert", "append", "extend", "__setitem__"):
                found.append(f"{line}: sys.path.{func.attr}(...)")
        elif isinstance(node, (ast.List, ast.Tuple)):  # a child process's argv: [..., "-m", "tests.x", ...]
            items = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
            found += [f"{line}: -m {b}" for a, b in zip(items, items[1:]) if a == "-m" and isinstance(b, str)
                      and _is_tests(b)]
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if _is_sys_path(target) or (isinstance(target, ast.Subscript) and _is_sys_path(target.value)):
                    found.append(f"{line}: assigns sys.path")
    return found


def installed_files() -> list[Path]:
    return sorted(p for package in INSTALLED for p in (REPO / package).rglob("*.py") if "__pycache__" not in p.parts)


def test_nothing_installed_imports_tests_or_edits_sys_path():
    files = installed_files()
    assert len(files) > 50 and {p.relative_to(REPO).parts[0] for p in files} == set(INSTALLED)
    found = [f for path in files for f in problems(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))]
    assert not found, "installed code may not import `tests` or edit sys.path:\n" + "\n".join(found)


def test_the_checker_catches_each_form():
    bad = {
        "import tests": 1, "import tests.fakes as f": 1, "from tests.postgres import start": 1,
        "from tests import conftest": 1, "importlib.import_module('tests.live.fake_server')": 1,
        "__import__('tests')": 1, "cmd = [sys.executable, '-m', 'tests.live.fake_server']": 1,
        "sys.path.insert(0, str(REPO))": 1, "sys.path.append('x')": 1, "sys.path[:0] = ['x']": 1,
        "sys.path = ['x']": 1, "sys.path += ['x']": 1,
    }
    for source, count in bad.items():
        assert len(problems(source)) == count, source
    good = ("import testsuite", "from .tests import x", "from adaptive_rag.testing import FakeLM",
            "import_module('adaptive_rag.testing.fake_server')", "cmd = ['-m', 'adaptive_rag.testing.fake_server']",
            "print(sys.path)", "paths = list(sys.path)")
    for source in good:
        assert problems(source) == [], source

"""A bare install (`pip install -e .`, no extras) simulated in this environment: the packages that
only the `eval` extra brings are made unimportable, as if they were not installed.

Which packages those are is computed, not listed: the distributions the `eval` extra of
pyproject.toml pulls in (with their dependencies, from the installed metadata) minus those the
base dependencies pull in; a module name is blocked when only such distributions provide it.

    python -m tests.without_extras arag ARGS...      # run `arag` as a bare install would
    python -m tests.without_extras --list            # the blocked module names

`.ci/bare-install` is the real thing (a fresh virtual environment; minutes).
"""

from __future__ import annotations

import importlib.abc
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(requirements: list[str], extra: str = "") -> set[str]:
    """Canonical names of the installed distributions `requirements` need, transitively."""
    seen: set[str] = set()
    todo = [(Requirement(r), extra) for r in requirements]
    while todo:
        req, for_extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({**default_environment(), "extra": for_extra}):
            continue
        name = _canonical(req.name)
        wanted = [""] + sorted(req.extras)
        key_new = [e for e in wanted if f"{name}[{e}]" not in seen]
        if not key_new:
            continue
        seen.update(f"{name}[{e}]" for e in key_new)
        seen.add(name)
        try:
            requires = md.requires(req.name) or []
        except md.PackageNotFoundError:
            continue
        for e in key_new:
            todo.extend((Requirement(r), e) for r in requires)
    return {n for n in seen if "[" not in n}


def eval_only_distributions() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = _closure(project["dependencies"])
    return _closure(project["optional-dependencies"]["eval"]) - base


def blocked_modules() -> set[str]:
    """Top-level module names provided only by eval-only distributions."""
    only_eval = eval_only_distributions()
    providers = md.packages_distributions()
    return {module for module, dists in providers.items()
            if dists and all(_canonical(d) in only_eval for d in dists)}


class _NotInstalled(importlib.abc.MetaPathFinder):
    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r} (a bare install)", name=fullname)
        return None


def install() -> set[str]:
    """Block the eval-only modules in this process (before anything imports them)."""
    names = blocked_modules()
    already = sorted(n for n in names if n in sys.modules)
    if already:
        raise RuntimeError(f"already imported: {', '.join(already)}")
    sys.meta_path.insert(0, _NotInstalled(names))
    return names


if __name__ == "__main__":
    blocked = install()
    if sys.argv[1:] == ["--list"]:
        print("\n".join(sorted(blocked)))
    elif sys.argv[1:2] == ["arag"]:
        from adaptive_rag.cli import run

        sys.exit(run(sys.argv[2:]))
    else:
        sys.exit(__doc__)

"""The README stays short, and its Layout section tells the truth about the repository: every
folder it names exists, and every top-level Python package (a top-level folder with an
__init__.py, plus tests/) is named there. Reads files only; imports nothing from the project."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
MAX_README_LINES = 300

# An entry of the Layout section: a table row or a list item whose first thing is a backticked path.
ENTRY = re.compile(r"^\s*(?:\|\s*|[-*+]\s+)`([^`\s]+)`")


def layout_section(text: str) -> list[str]:
    """The lines between the `## Layout` heading and the next heading of the same or a higher level."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if re.fullmatch(r"##\s+Layout\s*", line)]
    assert len(starts) == 1, "README.md needs exactly one '## Layout' section"
    body = []
    for line in lines[starts[0] + 1:]:
        if re.match(r"#{1,2}\s", line):
            break
        body.append(line)
    return body


def layout_paths(text: str) -> list[str]:
    """The paths the Layout section's entries start with, in order."""
    return [m.group(1) for line in layout_section(text) if (m := ENTRY.match(line))]


def top_level_packages() -> set[str]:
    """Top-level folders that are Python packages, and tests/."""
    found = {p.parent.name for p in REPO.glob("*/__init__.py") if not p.parent.name.startswith(".")}
    if (REPO / "tests").is_dir():
        found.add("tests")
    return found


def test_the_readme_is_at_most_300_lines():
    count = len(README.read_text(encoding="utf-8").splitlines())
    assert count <= MAX_README_LINES, f"README.md has {count} lines; move detail into docs/ (at most {MAX_README_LINES})"


def test_the_layout_names_only_folders_that_exist():
    paths = layout_paths(README.read_text(encoding="utf-8"))
    assert paths, "the Layout section names no paths (entries start with a backticked path such as `ingest/`)"
    assert len(paths) == len(set(paths)), f"the Layout section names a path twice: {paths}"
    missing = []
    for path in paths:
        target = REPO / path.rstrip("/")
        exists = target.is_dir() if path.endswith("/") else target.exists()
        if not exists:
            missing.append(path)
    assert not missing, f"README.md's Layout names paths that do not exist: {missing}"


def test_the_layout_names_every_top_level_package():
    named = {p.rstrip("/") for p in layout_paths(README.read_text(encoding="utf-8"))}
    packages = top_level_packages()
    assert {"adaptive_rag", "ingest", "gatekeeper", "eval", "tests"} <= packages  # the finder finds them
    missing = sorted(packages - named)
    assert not missing, f"README.md's Layout does not name these top-level packages: {missing}"


def test_the_layout_parser_reads_tables_and_lists():
    text = "intro\n## Layout\n\n| path | what |\n|---|---|\n| `a/` | x |\n- `b/c/`: y\n* `d.txt` z\n## Next\n| `e/` | no |\n"
    assert layout_paths(text) == ["a/", "b/c/", "d.txt"]

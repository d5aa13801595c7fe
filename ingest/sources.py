"""Resolve what a user passes to `arag ingest` into documents.

Forms: a file or folder path; `jsonl:PATH` (or any `*.jsonl` file); `squad:PATH`;
`hotpotqa:PATH`; and the named sets `squad-dev`, `hotpotqa-train`, `hotpotqa-test`, which read
`../shared/data` when present and otherwise the attributed sample that ships with the package
(`adaptive_rag/demo_data/squad_sample.json`, see corpora/README.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from adaptive_rag.settings import DEMO_SAMPLE, Settings
from ingest.readers import ReadProblem, ReadResult, read_file, read_folder, read_hotpotqa, read_jsonl, read_squad

PREFIXED: dict[str, Callable[[Path], Iterator[ReadResult]]] = {
    "squad": read_squad, "hotpotqa": read_hotpotqa, "jsonl": read_jsonl,
}


def named_sets(settings: Settings) -> dict[str, tuple[str, Path, Path | None]]:
    """name -> (format, full-set path, sample fallback or None)."""
    shared = settings.shared_data_dir
    return {
        "squad-dev": ("squad", shared / "squad_dev_v1.1.json", DEMO_SAMPLE),
        "squad-sample": ("squad", DEMO_SAMPLE, None),
        "hotpotqa-train": ("hotpotqa", shared / "hotpotqa" / "train.csv", None),
        "hotpotqa-test": ("hotpotqa", shared / "hotpotqa" / "test.csv", None),
    }


def resolve_named(name: str, settings: Settings) -> tuple[str, Path] | None:
    entry = named_sets(settings).get(name)
    if entry is None:
        return None
    fmt, full, sample = entry
    return fmt, (full if full.exists() or sample is None else sample)


def folder_of(spec: str, settings: Settings) -> Path | None:
    """The folder `spec` names (a plain path to an existing folder), else None: a file, a named set,
    a prefixed source or a missing path."""
    if resolve_named(spec, settings) is not None:
        return None
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in PREFIXED and rest:
        return None
    path = Path(spec).expanduser()
    return path if path.is_dir() else None


def read_source(spec: str, settings: Settings) -> Iterator[ReadResult]:
    named = resolve_named(spec, settings)
    if named is not None:
        fmt, path = named
        if not path.exists():
            yield ReadProblem(spec, f"data set file {path} not found")
            return
        yield from PREFIXED[fmt](path)
        return
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in PREFIXED and rest:
        path = Path(rest).expanduser()
        if not path.is_file():
            yield ReadProblem(spec, f"no such file: {path}")
            return
        yield from PREFIXED[prefix](path)
        return
    path = Path(spec).expanduser()
    if not path.exists():
        yield ReadProblem(spec, "no such file or folder (named sets: " + ", ".join(named_sets(settings)) + ")")
    elif path.is_dir():
        yield from read_folder(path)
    elif path.suffix.lower() == ".jsonl":
        yield from read_jsonl(path)
    else:
        yield read_file(path, path.name)

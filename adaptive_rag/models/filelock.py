"""An exclusive lock between processes, on a lock file beside what it protects (POSIX `flock`).

Two servers starting on a fresh model cache both want to pull and convert the same model; with
the lock the second waits for the first and then finds the finished file instead of racing it
(before, one crashed renaming its half-written directory onto the other's). The kernel releases
the lock when its holder exits, so a killed process never leaves it held.
"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) for the `with` block; waits for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def lock_path(target: Path) -> Path:
    """The lock file guarding `target` (a file or directory): `<parent>/.locks/<name>.lock`."""
    return target.parent / ".locks" / f"{target.name}.lock"

"""`<data_dir>/server.json`: which `arag serve` holds the data directory.

The embedded store serves one process at a time, so while a server runs, `arag ingest`, `search`,
`collections` and `delete` send their work to it instead of opening the store themselves. The
server announces itself here (`announce`: url, pid, start time; removed at exit); the CLI asks
`find_running`, which trusts the file only while its process is alive (a server killed with
SIGKILL leaves a stale file, which is then ignored).
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

FILE_NAME = "server.json"


def local_url(host: str, port: int) -> str:
    """The URL a local client uses for a server bound to `host` (a wildcard means loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def write(data_dir: Path, url: str) -> Path:
    """Announce this process as the server at `url` (atomically: a reader never sees half a file)."""
    path = Path(data_dir) / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{FILE_NAME}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid(), "started": time.time()}))
    tmp.replace(path)
    return path


def remove(data_dir: Path) -> None:
    """Withdraw the announcement, if it is still this process's."""
    path = Path(data_dir) / FILE_NAME
    found = _read(path)
    if found is not None and found.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def find_running(data_dir: Path) -> dict | None:
    """{"url", "pid", "started"} of the live server that holds `data_dir`, or None."""
    found = _read(Path(data_dir) / FILE_NAME)
    if found is None or not isinstance(found.get("url"), str) or not _alive(found.get("pid")):
        return None
    return found


@contextmanager
def announce(data_dir: Path, host: str, port: int) -> Iterator[Path]:
    """`with announce(...): uvicorn.run(...)`: the file exists exactly while the server runs.

    uvicorn re-raises the SIGTERM that stopped it once it has shut down, under the handler that
    was there before it; the default handler would kill the process before this removes the file,
    so while announced, SIGTERM raises SystemExit (exit status 143) instead."""
    import signal
    import threading

    previous = None
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    path = write(data_dir, local_url(host, port))
    try:
        yield path
    finally:
        remove(data_dir)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(pid) -> bool:
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return False
    return True

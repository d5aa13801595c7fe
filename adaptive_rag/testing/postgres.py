"""A private PostgreSQL server, for the tests (tests/conftest.py: `ARAG_TEST_POSTGRES_URL` when set,
otherwise one of these) and the replica load benchmark (`python -m eval.bench load --replicas N`):
started from Debian's `postgresql` package (initdb + pg_ctl in a temp directory, on a free loopback
port, stopped at the end). Without the package, `start_private_server` raises LookupError saying how
to install it (`.ci/run` installs the package); the tests that need it fail, never skip.

initdb refuses to run as root, so as root the server runs as the `postgres` user the package
creates. Each test gets its own schema (`search_path` in the URL), dropped afterwards.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

USER, PASSWORD, DATABASE = "arag", "test pass:@/%", "arag_test"  # a password that needs URL quoting
INSTALL_HINT = ("no PostgreSQL server binaries found (looked for /usr/lib/postgresql/*/bin/initdb and initdb on "
                "PATH): install Debian's postgresql package (apt-get install postgresql), or set "
                "ARAG_TEST_POSTGRES_URL=postgresql://user:password@host:port/db to use a running server")


def find_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PrivateServer:
    bindir: Path
    root: Path
    port: int
    as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:1])} failed ({result.returncode}): {result.stderr or result.stdout}")

    def start(self) -> None:
        data = self.root / "data"
        (self.root / "pw").write_text(PASSWORD + "\n")
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-U", USER, "--pwfile", str(self.root / "pw"),
                  "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.root / "log"), "-o", options,
                  "-w", "-t", "60", "start")
        self._run(str(self.bindir / "createdb"), "-h", str(self.root), "-p", str(self.port), "-U", USER, DATABASE)

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_private_server() -> PrivateServer:
    """initdb + start in a new temp directory; raises LookupError(INSTALL_HINT) without binaries."""
    bindir = find_bindir()
    if bindir is None:
        raise LookupError(INSTALL_HINT)
    root = Path(tempfile.mkdtemp(prefix="arag-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the package's postgres user
        import pwd

        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    server = PrivateServer(bindir, root, _free_port(), as_user)
    try:
        server.start()
    except BaseException:
        log = root / "log"
        detail = log.read_text()[-2000:] if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        if detail:
            raise RuntimeError(f"the test PostgreSQL server did not start:\n{detail}") from None
        raise
    return server


def schema_url(url: str, schema: str) -> str:
    """`url` with every table in `schema` (libpq's `options=-c search_path=...`)."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def new_schema(url: str) -> str:
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    return name


def drop_schema(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')

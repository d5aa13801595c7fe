"""Decision stores: `sqlite` (one file in the data directory, the default) and `postgresql` (one
database shared by API replicas), chosen by `ARAG_DECISIONS_URL`:

- unset: SQLite at `<data dir>/decisions.sqlite`;
- `sqlite:///relative/path.sqlite` or `sqlite:////absolute/path.sqlite` (SQLAlchemy's spelling);
- `postgresql://user:password@host:5432/db` (also `postgres://`, `postgresql+psycopg://`).

Both implement `DecisionStore` (base.py) with the same schema and migrations (migrations.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from adaptive_rag.decision_store.base import DecisionStore
from adaptive_rag.errors import ConfigError, UnknownNameError


def _sqlite(url: str | None, data_dir: Path) -> DecisionStore:
    from adaptive_rag.decision_store.sqlite import SQLiteDecisionStore

    return SQLiteDecisionStore(sqlite_path(url, data_dir))


def _postgresql(url: str | None, data_dir: Path) -> DecisionStore:
    from adaptive_rag.decision_store.postgres import PostgresDecisionStore

    return PostgresDecisionStore(url)


DECISION_STORES: dict[str, Callable[[str | None, Path], DecisionStore]] = {
    "sqlite": _sqlite, "postgresql": _postgresql}


def decision_store_kind(url: str | None) -> str:
    """The DECISION_STORES name a URL selects; a ConfigError for any other scheme."""
    if not url:
        return "sqlite"
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower() if ":" in url else ""
    if scheme in ("postgresql", "postgres"):
        return "postgresql"
    if scheme == "sqlite":
        return "sqlite"
    raise UnknownNameError(f"ARAG_DECISIONS_URL must start with postgresql:// or sqlite:/// (got {scheme or 'no'} scheme); "
                           f"valid decision stores: {', '.join(DECISION_STORES)}")


def sqlite_path(url: str | None, data_dir: Path) -> Path:
    if not url:
        return Path(data_dir) / "decisions.sqlite"
    parts = urlsplit(url)
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if parts.netloc or not path or path == ":memory:" or parts.query:
        raise ConfigError(f"invalid decision log URL {url!r}: use sqlite:///relative/file.sqlite or "
                          "sqlite:////absolute/file.sqlite")
    return Path(path)


def open_decision_store(url: str | None, data_dir: Path) -> DecisionStore:
    """The decision log a URL names (None: SQLite in `data_dir`), migrated to the current schema."""
    return DECISION_STORES[decision_store_kind(url)](url, data_dir)


def decision_store_from_settings(settings) -> DecisionStore:
    """The configured decision store (`ARAG_DECISIONS_URL`; unset = SQLite in the data directory).
    A bad URL or an unreachable database is a ConfigError of one line, its password masked."""
    url = settings.decisions_url.get_secret_value() if settings.decisions_url else None
    return open_decision_store(url, settings.data_dir)


__all__ = ["DECISION_STORES", "DecisionStore", "decision_store_from_settings", "decision_store_kind",
           "open_decision_store", "sqlite_path"]

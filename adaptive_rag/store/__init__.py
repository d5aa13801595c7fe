"""Stores: `edge` (embedded Qdrant Edge, the default) and `server` (Qdrant server/cluster)."""

from __future__ import annotations

from typing import Callable

from adaptive_rag.settings import Settings
from adaptive_rag.store.base import CollectionMeta, Store


def _edge(settings: Settings) -> Store:
    from adaptive_rag.store.edge import EdgeStore

    return EdgeStore(settings.collections_dir)


def _server(settings: Settings) -> Store:
    from adaptive_rag.store.server import QdrantServerStore

    key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    return QdrantServerStore(settings.qdrant_url, key, settings.qdrant_timeout_s)


STORES: dict[str, Callable[[Settings], Store]] = {"edge": _edge, "server": _server}


def store_kind(settings: Settings) -> str:
    return "server" if settings.qdrant_url else "edge"


def open_store(settings: Settings) -> Store:
    from adaptive_rag.registry import lookup

    return lookup(STORES, store_kind(settings), "store")(settings)


__all__ = ["CollectionMeta", "Store", "STORES", "open_store", "store_kind"]

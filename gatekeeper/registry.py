"""Every router kind by name, and how settings name one: `KIND` or `KIND:NAME` (NAME defaults to
"default"), e.g. `panel`, `panel:mine`, `learned:mine`, `gatekeeper:kb@v2`, `knn:default`, `prior`.

To add a router: write a module with a gatekeeper.router.Router subclass and add one line to
ROUTERS below; settings then select it for a slot (ARAG_ROUTERS='{"panel": "KIND:NAME"}').
"""

from __future__ import annotations

from pathlib import Path

from adaptive_rag.registry import lookup
from gatekeeper.artifact import Gatekeeper
from gatekeeper.knn_router import KnnRouter
from gatekeeper.learned_router import LearnedRouter
from gatekeeper.panel_router import PanelRouter
from gatekeeper.prior_router import PriorRouter
from gatekeeper.router import Router


def parse_spec(spec: str) -> tuple[str, str]:
    """("KIND", "NAME") of a router spec; the kind must be registered."""
    kind, _, name = str(spec).partition(":")
    lookup(ROUTERS, kind, "router kind")
    return kind, name or "default"


def load_router(spec: str, data_dir: Path, embedder, decisions=None) -> Router:
    """The router a spec names, loaded and checked against the serving embedder (NotFoundError
    when it is not trained, ConfigError when it cannot serve); `decisions`, the engine's decision
    log, holds the learned router's versions."""
    kind, name = parse_spec(spec)
    cls = ROUTERS[kind]
    if cls.uses_decision_log:
        return cls.load(name, Path(data_dir), embedder, decisions=decisions)
    return cls.load(name, Path(data_dir), embedder)


ROUTERS: dict[str, type[Router]] = {
    "gatekeeper": Gatekeeper,
    "knn": KnnRouter,
    "learned": LearnedRouter,
    "panel": PanelRouter,
    "prior": PriorRouter,
}

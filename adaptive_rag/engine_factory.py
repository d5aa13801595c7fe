"""Build the query engine from settings: store, embedder, the model panel (role models plus
`panel`), decision log. Used by the CLI and by the server's lifespan (built once per process)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adaptive_rag.decision_store import DecisionStore, open_decision_store
from adaptive_rag.models.catalog import load_lm, resolve
from adaptive_rag.models.panel import Models
from adaptive_rag.models.embedder import load_embedder
from adaptive_rag.pipeline import Engine
from adaptive_rag.policies import get_policy
from adaptive_rag.retrieve import Retriever
from adaptive_rag.settings import Settings
from adaptive_rag.store import open_store

if TYPE_CHECKING:  # pragma: no cover
    from gatekeeper.artifact import Gatekeeper


def decision_log(settings: Settings) -> DecisionStore:
    """The configured decision log (`ARAG_DECISIONS_URL`; unset = SQLite in the data directory).
    A bad URL or an unreachable database is a ConfigError of one line, its password masked."""
    url = settings.decisions_url.get_secret_value() if settings.decisions_url else None
    return open_decision_store(url, settings.data_dir)


def build_engine(settings: Settings) -> Engine:
    get_policy(settings.default_policy)  # fail early on a misconfigured default
    embedder = load_embedder(settings)
    retriever = Retriever(settings, open_store(settings), embedder)
    return Engine(retriever, build_panel(settings), decision_log(settings),
                  default_policy=settings.default_policy, top_k=settings.top_k,
                  max_new_tokens=settings.max_new_tokens, long_context_budget=settings.long_context_budget,
                  thresholds=settings.thresholds, gatekeeper=load_configured_gatekeeper(settings, embedder),
                  weak_strong_router=load_weak_strong_router(settings, embedder),
                  panel_router=load_panel_router(settings, embedder))


def build_panel(settings: Settings) -> Models:
    """Every panel model on its engine (nothing loads yet; a missing model is a ConfigError
    naming the `arag models pull` that fixes it)."""
    catalog = settings.catalog
    specs = {name: resolve(catalog, name) for name in settings.panel_models}
    lms = {name: load_lm(name, spec, settings.models_dir) for name, spec in specs.items()}
    roles = {settings.reader_model, settings.long_context_model, settings.strong_model}
    return Models(reader=lms[settings.reader_model], long_context=lms[settings.long_context_model],
                  prices={name: spec.prices for name, spec in specs.items()},
                  strong=lms[settings.strong_model] if settings.strong_model else None,
                  others=tuple(lm for name, lm in lms.items() if name not in roles),
                  tags={name: spec.tags for name, spec in specs.items()})


def load_weak_strong_router(settings: Settings, embedder):
    """The kNN weak/strong router ARAG_WEAK_STRONG_ROUTER names, when it has been trained."""
    from gatekeeper import knn_router

    if not knn_router.exists(settings.data_dir, settings.weak_strong_router):
        return None
    router = knn_router.load(settings.data_dir, settings.weak_strong_router)
    router.check_compatible(embedder.name, embedder.dim)
    return router


def load_panel_router(settings: Settings, embedder):
    """The panel router `adaptive` runs: <data dir>/routers/<ARAG_PANEL_ROUTER> when trained there,
    else, for "default", the one shipped with the package. A router that does not fit the serving
    embedder is not an error at start-up: `adaptive` then refuses with the message (other
    policies keep working)."""
    from adaptive_rag.errors import ConfigError
    from gatekeeper import panel_router

    path = panel_router.find(settings.data_dir, settings.panel_router)
    if path is None:
        return None
    router = panel_router.load(path)
    try:
        router.check_compatible(embedder.name, embedder.dim)
    except ConfigError as e:
        return str(e)
    return router


def load_configured_gatekeeper(settings: Settings, embedder) -> "Gatekeeper | None":
    """The artifact ARAG_GATEKEEPER names (default "default"), checked against the embedder; None
    when the default name has not been trained yet (adaptive then refuses with a message)."""
    from gatekeeper.artifact import load_gatekeeper, versions

    explicit = "gatekeeper" in settings.model_fields_set or settings.gatekeeper_version is not None
    if not explicit and not versions(settings.data_dir, settings.gatekeeper):
        return None
    gk = load_gatekeeper(settings.data_dir, settings.gatekeeper, settings.gatekeeper_version)
    gk.check_compatible(embedder.name, embedder.dim)
    return gk

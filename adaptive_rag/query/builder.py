"""Build the query engine from settings: store, embedder, the model panel (role models plus
`panel`), the decision store and the routers. Used by the CLI and by the server's lifespan (built
once per process)."""

from __future__ import annotations

from adaptive_rag.decision_store import decision_store_from_settings
from adaptive_rag.errors import ConfigError, NotFoundError
from adaptive_rag.models.catalog import load_lm, resolve
from adaptive_rag.models.embedder import load_embedder
from adaptive_rag.models.panel import Models
from adaptive_rag.query.engine import QueryConfig, QueryEngine
from adaptive_rag.query.policies import get_policy
from adaptive_rag.registry import lookup
from adaptive_rag.retrieve import Retriever
from adaptive_rag.settings import Settings
from adaptive_rag.store import open_store


def build_engine(settings: Settings) -> QueryEngine:
    get_policy(settings.default_policy)  # fail early on a misconfigured default
    embedder = load_embedder(settings)
    retriever = Retriever(settings, open_store(settings), embedder)
    models = build_panel(settings)
    probes = attach_probes(settings, models)
    decisions = decision_store_from_settings(settings)
    return QueryEngine(retriever, models, decisions, QueryConfig.from_settings(settings),
                       load_routers(settings, embedder, decisions), probes)


def attach_probes(settings: Settings, models: Models) -> dict:
    """The settings' answer probes, each attached to its panel model (gatekeeper/answer_probe.py):
    name -> probe. A named probe that is missing or fits no panel model stops the engine."""
    if not settings.answer_probes:
        return {}
    from gatekeeper.answer_probe import attach

    return attach(settings.answer_probes, models, settings.data_dir)


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


def load_routers(settings: Settings, embedder, decisions=None) -> dict[str, object]:
    """Slot -> the router the settings name for it (Settings.router_specs), checked against the
    serving embedder. A router the settings name explicitly must load, or the engine does not
    start; a default one that is not trained (or does not fit this embedder) leaves its slot
    with the reason, so only the policies that need it refuse. `decisions`: the engine's decision
    log (the learned router's versions live there)."""
    from gatekeeper.registry import load_router
    from gatekeeper.router import ROUTER_SLOTS

    routers: dict[str, object] = {}
    explicit = settings.explicit_router_slots()
    for slot, spec in settings.router_specs().items():
        lookup(dict.fromkeys(ROUTER_SLOTS), slot, "router slot")
        try:
            routers[slot] = load_router(spec, settings.data_dir, embedder, decisions)
        except (NotFoundError, ConfigError) as exc:
            if slot in explicit:
                raise
            routers[slot] = str(exc)
    return routers

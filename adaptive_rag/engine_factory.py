"""Build the query engine from settings: store, embedder, reader and long-context models,
decision log. Used by the CLI and by the server's lifespan (built once per process)."""

from __future__ import annotations

from adaptive_rag.decisions import DecisionLog
from adaptive_rag.models.catalog import load_lm, resolve
from adaptive_rag.models.embedder import load_embedder
from adaptive_rag.pipeline import Engine, Models
from adaptive_rag.policies import get_policy
from adaptive_rag.retrieve import Retriever
from adaptive_rag.settings import Settings
from adaptive_rag.store import open_store


def decision_log(settings: Settings) -> DecisionLog:
    return DecisionLog(settings.data_dir / "decisions.sqlite")


def build_engine(settings: Settings) -> Engine:
    get_policy(settings.default_policy)  # fail early on a misconfigured default
    catalog = settings.catalog
    reader_spec = resolve(catalog, settings.reader_model)
    long_spec = resolve(catalog, settings.long_context_model)
    reader = load_lm(settings.reader_model, reader_spec, settings.models_dir)
    long_lm = load_lm(settings.long_context_model, long_spec, settings.models_dir)
    prices = {settings.reader_model: reader_spec.prices, settings.long_context_model: long_spec.prices}
    retriever = Retriever(settings, open_store(settings), load_embedder(settings))
    return Engine(retriever, Models(reader, long_lm, prices), decision_log(settings),
                  default_policy=settings.default_policy, top_k=settings.top_k,
                  max_new_tokens=settings.max_new_tokens, long_context_budget=settings.long_context_budget,
                  thresholds=settings.thresholds)

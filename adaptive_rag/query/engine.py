"""The query path: validate, open the decision record, run the policy (which runs routes and
consults routers through a QueryRun, each appending a stage), store the record, return it.

The answer of a request is `decision.answer`; everything that led to it is in `decision.stages`.
Settings reach the engine in one form, `QueryConfig` (query/builder.py makes it from Settings).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from adaptive_rag.answer_cache import CacheIndex
from adaptive_rag.cache_threshold import ThresholdLearner
from adaptive_rag.decisions import Decision, DecisionStore, Stage
from adaptive_rag.errors import DeadlineExceeded, RequestCancelled, UserError
from adaptive_rag.limits import MAX_TOP_K, check_query_text, check_range
from adaptive_rag.models.control import GenerationControl, controlling
from adaptive_rag.models.lm import BackendError
from adaptive_rag.models.panel import Models
from adaptive_rag.query.cached import cache_request, remember, serve_cached
from adaptive_rag.query.policies import DEFAULT_THRESHOLDS, get_policy
from adaptive_rag.query.run import QueryRun
from adaptive_rag.registry import lookup
from adaptive_rag.retrieve import Retriever

if TYPE_CHECKING:  # pragma: no cover
    from adaptive_rag.settings import Settings
    from gatekeeper.router import Router


@dataclass(frozen=True)
class QueryConfig:
    """What the query path reads of the settings: the policy of a request that names none, chunks
    per answer, tokens per answer, the long-context budgets (of the long-context model, and of the
    strong model when it reads whole documents) and the thresholds (the defaults of
    query/policies.py, updated by these)."""

    default_policy: str = "self_route"
    top_k: int = 5
    max_new_tokens: int = 32
    long_context_budget: int = 4000
    strong_long_context_budget: int = 8000
    multi_step_strategy: str = "interleaved"  # query/multi_step.py: interleaved | decompose
    multi_step_max_steps: int = 3  # retrievals of the multi_step route, at most
    multi_step_notes: bool = False  # the final call reads the steps' notes beside the chunks
    verify_escalation: tuple[str, str] = ("rag", "strong")  # (route, role) a doubted answer escalates to
    thresholds: Mapping[str, float] = field(default_factory=dict)
    cache: str = "off"  # the answer cache: off | exact | semantic (query/cached.py)
    cache_scope: str = "key"  # key | collection
    cache_similarity: float = 0.9  # a fresh cache's near-hit threshold
    cache_target_error: float = 0.01  # the wrong-hit rate the learned thresholds aim at
    cache_rewrite: str = "adapt"  # adapt (the reader sees the cached answer) | check (it answers blind)
    cache_same_question: str = "off"  # off | reader | strong: the check before a near hit's rewrite
    cache_same_question_min: float = 0.5  # the P(Yes) that check needs

    @classmethod
    def from_settings(cls, settings: "Settings") -> "QueryConfig":
        from adaptive_rag.query.answer_routes import ANSWER_ROUTES

        escalation = tuple(settings.verify_escalation.split(":", 1))
        lookup(dict.fromkeys(ANSWER_ROUTES), escalation[0], "route (ARAG_VERIFY_ESCALATION)")
        return cls(default_policy=settings.default_policy, top_k=settings.top_k, max_new_tokens=settings.max_new_tokens,
                   long_context_budget=settings.long_context_budget,
                   strong_long_context_budget=settings.strong_long_context_budget,
                   multi_step_strategy=settings.multi_step_strategy, multi_step_max_steps=settings.multi_step_max_steps,
                   multi_step_notes=settings.multi_step_notes,
                   verify_escalation=escalation,
                   thresholds=dict(settings.thresholds), cache=settings.cache, cache_scope=settings.cache_scope,
                   cache_similarity=settings.cache_similarity, cache_target_error=settings.cache_target_error,
                   cache_rewrite=settings.cache_rewrite, cache_same_question=settings.cache_same_question,
                   cache_same_question_min=settings.cache_same_question_min)


class QueryEngine:
    """Answers questions over the store's collections with the panel's models.

    `routers`: slot -> the Router that serves it, or a sentence saying why none can (a policy that
    needs that slot then refuses with it; the others work). `probes`: name -> the answer probes
    attached to panel models (gatekeeper/answer_probe.py). `observers`: callables given every
    finished decision (the server's metrics)."""

    def __init__(self, retriever: Retriever, models: Models, decision_store: DecisionStore | None,
                 config: QueryConfig | None = None, routers: Mapping[str, "Router | str"] | None = None,
                 probes: Mapping[str, object] | None = None):
        self.retriever = retriever
        self.models = models
        self.decision_store = decision_store
        self.config = config or QueryConfig()
        self.thresholds = {**DEFAULT_THRESHOLDS, **self.config.thresholds}
        self.routers: dict[str, Router | str] = dict(routers or {})
        self.probes: dict[str, object] = dict(probes or {})
        self.observers: list = []
        self.cache_index = CacheIndex()  # near-hit lookup over the answer cache (query/cached.py)
        self.cache_thresholds = ThresholdLearner(self.config.cache_similarity, self.config.cache_target_error)

    def answer(self, collection: str, query: str, policy: str | None = None, top_k: int | None = None,
               thresholds: Mapping[str, float] | None = None, queued_ms: float | None = None,
               timeout_s: float | None = None, history: Sequence[tuple[str, str]] = (), owner: str | None = None,
               cancel: threading.Event | None = None,
               events: Callable[[str, object], None] | None = None, use_cache: bool = True) -> Decision:
        """Raises UserError for bad requests (nothing recorded) and BackendError when a model
        fails. Any failure after the record was opened (a backend error, a policy that needs a
        router that is missing, a bug) is recorded with status "error" and its message.
        `queued_ms`: how long the request waited for admission (the server's queue); it becomes
        the first stage and part of the total latency, so a slow answer shows whether it queued.
        `timeout_s`: no model call starts after this many seconds (from now); the request then
        fails with DeadlineExceeded and its record says status "timeout".
        `history`: earlier (role, text) chat turns; the most recent that fit
        conversation.HISTORY_BUDGET_CHARS go into the prompt, and the previous user turn into the
        retrieval query (a stage records both).
        `owner`: the API key's name, recorded. `cancel`: set it to stop the request (the client left,
        the server shuts down): generation stops at the next token where the engine allows, or
        before the next model call, with RequestCancelled and status "cancelled".
        `events(kind, value)` hears the request's progress, for streaming: ("opened", decision) once
        the input is valid and the record open; ("route", route) when the policy commits to the
        route whose answer is final, before generating it; ("text", piece) for each piece of that
        answer as it is decoded (engines that cannot stream send none: the answer is in the result).
        `use_cache`: False skips the answer cache (query/cached.py) for this request; a request
        with chat history never uses it."""
        chosen = get_policy(policy or self.config.default_policy)
        check_query_text(query, (t for _, t in history))
        k = check_range("top_k", self.config.top_k if top_k is None else top_k, MAX_TOP_K)
        merged = self._thresholds(thresholds)
        self.retriever.store.get_meta(collection)  # NotFoundError for an unknown collection
        control = GenerationControl(cancel or threading.Event(),
                                    None if timeout_s is None else time.monotonic() + timeout_s)
        run = QueryRun(self, Decision(collection=collection, policy=chosen.name, query=query, owner=owner), k,
                       merged, control, history, events)
        if queued_ms is not None:
            run.decision.stages.insert(0, Stage(name="queue", outcome="admitted", latency_ms=queued_ms))
        started = time.perf_counter()
        try:
            if events is not None:
                events("opened", run.decision)
            cache = cache_request(self, collection, query, chosen.name, k, merged, owner) \
                if use_cache and not history else None
            with controlling(control):
                if cache is None or not serve_cached(run, cache):
                    chosen.run(run)
                    if cache is not None:
                        remember(run, cache)
        except (BackendError, DeadlineExceeded, RequestCancelled) as exc:
            run.decision.status, run.decision.error = _recorded_status(exc), str(exc)
            exc.decision_id = run.decision.id
            raise
        except Exception as exc:
            run.decision.status, run.decision.error = "error", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            run.decision.latency_ms = (time.perf_counter() - started) * 1e3 + (queued_ms or 0.0)
            if self.decision_store is not None:
                self.decision_store.write(run.decision)
            for observe in self.observers:
                observe(run.decision)
        return run.decision

    def _thresholds(self, overrides: Mapping[str, float] | None) -> dict[str, float]:
        """The engine's thresholds with a request's overrides: known names, finite numbers."""
        unknown = set(overrides or {}) - set(self.thresholds)
        if unknown:
            raise UserError(f"unknown thresholds {sorted(unknown)}; valid: {', '.join(sorted(self.thresholds))}")
        not_finite = sorted(k for k, v in (overrides or {}).items()
                            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v))
        if not_finite:
            raise UserError(f"thresholds must be finite numbers: {', '.join(not_finite)}")
        return {**self.thresholds, **(overrides or {})}


def _recorded_status(exc: Exception) -> str:
    """The record's status for a request stopped by `exc`: its deadline passed, it was
    cancelled, or a model backend failed."""
    if isinstance(exc, DeadlineExceeded):
        return "timeout"
    return "cancelled" if isinstance(exc, RequestCancelled) else "error"

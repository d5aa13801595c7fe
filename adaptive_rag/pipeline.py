"""The query path: validate, retrieve (once, when a route needs it), run the policy's routes,
record every stage in a Decision, store it, return it.

The answer of a request is `decision.answer`; everything that led to it is in `decision.stages`.
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from adaptive_rag import routes, verify
from adaptive_rag.decisions import Citation, Decision, DecisionLog, Stage
from adaptive_rag.errors import DeadlineExceeded, RequestCancelled, UserError
from adaptive_rag.models.control import GenerationControl, controlling
from adaptive_rag.models.lm import BackendError, LanguageModel
from adaptive_rag.models.panel import Models
from adaptive_rag.policies import DEFAULT_THRESHOLDS, get_policy
from adaptive_rag.retrieve import MAX_QUERY_CHARS, Retrieval, Retriever
from adaptive_rag.routes import RouteResult
from adaptive_rag.usage import Prices, TokenUsage
from gatekeeper.features import answer_signals, router_inputs

if TYPE_CHECKING:  # pragma: no cover
    from gatekeeper.artifact import Gatekeeper
    from gatekeeper.knn_router import KnnRouter
    from gatekeeper.panel_router import PanelRouter

MAX_TOP_K = 50
ABSTAIN_ANSWER = "The collection does not answer this question."
# long context reads documents of hits down to this rank until its budget is full: on a corpus of
# short documents (HotpotQA paragraphs) the top-k alone would leave most of the budget unused
LONG_CONTEXT_DEPTH = 50


class Engine:
    def __init__(self, retriever: Retriever, models: Models, log: DecisionLog | None,
                 default_policy: str = "self_route", top_k: int = 5, max_new_tokens: int = 32,
                 long_context_budget: int = 4000, thresholds: Mapping[str, float] | None = None,
                 gatekeeper: "Gatekeeper | None" = None, weak_strong_router: "KnnRouter | None" = None,
                 panel_router: "PanelRouter | str | None" = None):
        self.retriever = retriever
        self.models = models
        self.log = log
        self.default_policy = default_policy
        self.top_k = top_k
        self.max_new_tokens = max_new_tokens
        self.long_context_budget = long_context_budget
        self.thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
        self.gatekeeper = gatekeeper
        self.weak_strong_router = weak_strong_router
        self.panel_router = panel_router  # a str: why the configured router cannot serve
        self.observers: list = []  # callables given every finished decision (the server's metrics)

    def answer(self, collection: str, query: str, policy: str | None = None, top_k: int | None = None,
               thresholds: Mapping[str, float] | None = None, queued_ms: float | None = None,
               timeout_s: float | None = None, history: Sequence[tuple[str, str]] = (), owner: str | None = None,
               cancel: threading.Event | None = None,
               events: Callable[[str, object], None] | None = None) -> Decision:
        """Raises UserError for bad requests (nothing recorded) and BackendError when a model
        fails. Any failure after the record was opened (a backend error, a policy that needs a
        router that is missing, a bug) is recorded with status "error" and its message.
        `queued_ms`: how long the request waited for admission (the server's queue); it becomes
        the first stage and part of the total latency, so a slow answer shows whether it queued.
        `timeout_s`: no model call starts after this many seconds (from now); the request then
        fails with DeadlineExceeded and its record says status "timeout".
        `history`: earlier (role, text) chat turns; the most recent that fit HISTORY_BUDGET_CHARS
        go into the prompt, and the previous user turn into the retrieval query (a stage records both).
        `owner`: the API key's name, recorded. `cancel`: set it to stop the request (the client left,
        the server shuts down): generation stops at the next token where the engine allows, or
        before the next model call, with RequestCancelled and status "cancelled".
        `events(kind, value)` hears the request's progress, for streaming: ("opened", decision) once
        the input is valid and the record open; ("route", route) when the policy commits to the
        route whose answer is final, before generating it; ("text", piece) for each piece of that
        answer as it is decoded (engines that cannot stream send none: the answer is in the result)."""
        chosen = get_policy(policy or self.default_policy)
        if not isinstance(query, str) or not query.replace("\x00", "").strip():
            raise UserError("empty query")
        for text in (query, *(t for _, t in history)):
            try:
                text.encode("utf-8")
            except (UnicodeEncodeError, AttributeError):
                raise UserError("the query or a chat turn holds text that is not valid Unicode (a lone surrogate?)") from None
        if len(query) > MAX_QUERY_CHARS:
            raise UserError(f"query too long: {len(query)} characters (at most {MAX_QUERY_CHARS})")
        k = self.top_k if top_k is None else top_k
        if not 1 <= k <= MAX_TOP_K:
            raise UserError(f"top_k must be between 1 and {MAX_TOP_K}, got {k}")
        unknown = set(thresholds or {}) - set(self.thresholds)
        if unknown:
            raise UserError(f"unknown thresholds {sorted(unknown)}; valid: {', '.join(sorted(self.thresholds))}")
        not_finite = sorted(k for k, v in (thresholds or {}).items()
                            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v))
        if not_finite:
            raise UserError(f"thresholds must be finite numbers: {', '.join(not_finite)}")
        self.retriever.store.get_meta(collection)  # NotFoundError for an unknown collection
        control = GenerationControl(cancel or threading.Event(),
                                    None if timeout_s is None else time.monotonic() + timeout_s)
        run = QueryRun(self, Decision(collection=collection, policy=chosen.name, query=query, owner=owner), k,
                       {**self.thresholds, **(thresholds or {})}, control, history, events)
        if queued_ms is not None:
            run.decision.stages.insert(0, Stage(name="queue", outcome="admitted", latency_ms=queued_ms))
        started = time.perf_counter()
        try:
            if events is not None:
                events("opened", run.decision)
            with controlling(control):
                chosen.run(run)
        except BackendError as exc:
            run.decision.status, run.decision.error = "error", str(exc)
            exc.decision_id = run.decision.id
            raise
        except DeadlineExceeded as exc:
            run.decision.status, run.decision.error = "timeout", str(exc)
            exc.decision_id = run.decision.id
            raise
        except RequestCancelled as exc:
            run.decision.status, run.decision.error = "cancelled", str(exc)
            exc.decision_id = run.decision.id
            raise
        except Exception as exc:
            run.decision.status, run.decision.error = "error", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            run.decision.latency_ms = (time.perf_counter() - started) * 1e3 + (queued_ms or 0.0)
            if self.log is not None:
                self.log.write(run.decision)
            for observe in self.observers:
                observe(run.decision)
        return run.decision


def _displayed(inputs: Mapping) -> dict:
    """Router inputs as a decision stage shows them (the query, its vector and the draft are
    recorded elsewhere)."""
    return {k: v for k, v in inputs.items() if k not in ("query", "query_vector", "probe")}


HISTORY_BUDGET_CHARS = 1500  # earlier chat turns kept in the prompt, newest first (~400 tokens)


def kept_turns(history: Sequence[tuple[str, str]], budget: int = HISTORY_BUDGET_CHARS) -> list[tuple[str, str]]:
    """The most recent (role, text) turns whose text fits `budget` characters, oldest first."""
    kept: list[tuple[str, str]] = []
    used = 0
    for role, text in reversed(list(history)):
        if used + len(text) > budget:
            break
        kept.append((role, text))
        used += len(text)
    return kept[::-1]


class QueryRun:
    """One request in flight: the routes a policy may call, each recorded as a stage."""

    def __init__(self, engine: Engine, decision: Decision, top_k: int, thresholds: Mapping[str, float],
                 control: GenerationControl | None = None, history: Sequence[tuple[str, str]] = (),
                 events: Callable[[str, object], None] | None = None):
        self.engine = engine
        self.decision = decision
        self.control = control or GenerationControl()
        self.events = events
        self.history = kept_turns(history)
        # the question the models read: the earlier turns first (a follow-up such as "and its
        # population?" needs them); retrieval also reads the previous user turn
        self.question = decision.query
        self.retrieval_query = decision.query
        if self.history:
            turns = "\n".join(f"{role}: {text}" for role, text in self.history)
            self.question = f"(Conversation so far:\n{turns})\n{decision.query}"
            earlier = [text for role, text in self.history if role == "user"]
            if earlier:
                # the newest words count most: a long earlier turn is cut from its start
                self.retrieval_query = f"{earlier[-1]} {decision.query}"[-MAX_QUERY_CHARS:]
            decision.stages.append(Stage(name="conversation", signals={
                "turns_kept": len(self.history), "turns_dropped": len(history) - len(self.history),
                "retrieval_query": self.retrieval_query}, outcome=f"{len(self.history)} earlier turns in the prompt"))
        self.top_k = top_k
        self.thresholds = thresholds
        self._retrievals: dict[int, Retrieval] = {}
        self._drafts: dict[str, RouteResult] = {}

    def _lm(self, model: str | None, default_role: str) -> LanguageModel:
        """The panel model for the next call, unless the request was cancelled or its deadline
        passed (a call in progress stops between tokens where its engine can: control.py)."""
        self.control.raise_if_stopped("before its next model call")
        return self.engine.models.get(model, default_role)

    def threshold(self, name: str) -> float:
        return float(self.thresholds[name])

    def note(self, name: str, signals: dict, thresholds: dict, outcome: str) -> None:
        self.decision.stages.append(Stage(name=name, signals=signals, thresholds=thresholds, outcome=outcome))

    def retrieval(self, k: int | None = None) -> Retrieval:
        """The top `k` (default: the request's top_k) hybrid hits, searched once per depth. The
        request-depth search also keeps the dense and BM25 rankings: router signals."""
        k = k or self.top_k
        if k not in self._retrievals:
            started = time.perf_counter()
            result = self.engine.retriever.search(self.decision.collection, self.retrieval_query, k=k,
                                                  components=k == self.top_k)
            self._retrievals[k] = result
            scores = [h.score for h in result.hits]
            signals = {"mode": result.mode, "k": k, "hits": len(scores), "top_score": scores[0] if scores else None,
                       "score_gap": scores[0] - scores[1] if len(scores) > 1 else None}
            if result.dense_hits is not None:
                signals["dense_top"] = result.dense_hits[0].score if result.dense_hits else None
                signals["bm25_top"] = result.bm25_hits[0].score if result.bm25_hits else None
            self.decision.stages.append(Stage(
                name="retrieve", model=self.engine.retriever.embedder.name,
                signals={**signals, **result.timings_ms},
                outcome=f"{len(scores)} chunks", latency_ms=(time.perf_counter() - started) * 1e3,
            ))
        return self._retrievals[k]

    def hits(self, k: int | None = None):
        return self.retrieval(k).hits

    def _record(self, result: RouteResult, lm: LanguageModel, started: float) -> RouteResult:
        gen = result.generation
        outcome = "unanswerable" if result.unanswerable else "answered"
        engine_facts = {k: gen.extra[k] for k in ("cached_prompt_tokens", "slot_wait_ms", "refusal_probe_ms",
                                                  "refusal_probe_new_tokens")
                        if k in gen.extra}
        if result.route != "closed_book":  # how much of the answer the chunks it read hold
            engine_facts.update(support=result.support, supporting_chunks=len(result.supporting))
        self.decision.stages.append(Stage(
            name=result.route, model=lm.name, engine=lm.label,
            signals={**result.signals, "context_tokens": result.context_tokens, "generation_ms": gen.latency_ms,
                     **engine_facts},
            outcome=outcome, usage=gen.usage, latency_ms=(time.perf_counter() - started) * 1e3,
        ))
        self.decision.usage = self.decision.usage + gen.usage
        self.decision.cost += gen.usage.cost(self.engine.models.prices.get(lm.name, Prices()))
        return result

    # Routes. `model` is a panel model's name or role; by default closed-book and RAG run on the
    # reader and long context on the long-context model.

    def closed_book(self, model: str | None = None) -> RouteResult:
        """Run once per request and model: a router that read the draft's log-probs as features
        reuses it."""
        lm = self._lm(model, "reader")
        if lm.name not in self._drafts:
            started = time.perf_counter()
            self._drafts[lm.name] = self._record(routes.closed_book(lm, self.question, self.engine.max_new_tokens),
                                                 lm, started)
        return self._drafts[lm.name]

    def rag(self, model: str | None = None) -> RouteResult:
        hits = self.hits()
        lm, started = self._lm(model, "reader"), time.perf_counter()
        return self._record(routes.rag(lm, self.question, hits, self.engine.max_new_tokens), lm, started)

    def long_context(self, model: str | None = None) -> RouteResult:
        hits = self.hits(max(self.top_k, LONG_CONTEXT_DEPTH))
        lm, started = self._lm(model, "long_context"), time.perf_counter()
        result = routes.long_context(lm, self.engine.retriever.store, self.decision.collection, self.question,
                                     hits, self.engine.max_new_tokens, self.engine.long_context_budget)
        return self._record(result, lm, started)

    def route(self, route: str, model: str | None = None) -> RouteResult:
        """Run `route` ("closed_book", "rag" or "long_context") on `model`: a (route, model) pair."""
        if route not in routes.ROUTES:
            raise UserError(f"unknown route {route!r}; valid: {', '.join(routes.ROUTES)}")
        return getattr(self, route)(model)

    def answer_with(self, route: str, model: str | None = None) -> None:
        """Run `route` on `model` and make its answer final, committed before it is generated, so
        a streaming client sees the route first and then the answer's text as it is decoded."""
        if self.events is None:
            self.finish(self.route(route, model))
            return
        self.events("route", route)
        self.control.on_text = lambda piece: self.events("text", piece)
        try:
            result = self.route(route, model)
        finally:
            self.control.on_text = None
        self.finish(result)

    def _gatekeeper(self) -> "Gatekeeper":
        gk = self.engine.gatekeeper
        if gk is None:
            raise UserError(f"policy {self.decision.policy!r} needs a trained gatekeeper "
                            "(arag gatekeeper label / train; ARAG_GATEKEEPER names it)")
        return gk

    def gate(self) -> dict[str, float]:
        """The gatekeeper's calibrated probabilities from the query and its retrieval signals,
        recorded as a stage (the router inputs except the query vector, and the probabilities)."""
        gk = self._gatekeeper()
        retrieval = self.retrieval()
        # an artifact trained on the draft's log-probs needs the draft before it can decide
        probe = self.closed_book().signals if "probe" in gk.meta["feature_groups"] else None
        started = time.perf_counter()
        inputs = router_inputs(self.decision.query, retrieval, probe)
        probs = gk.probabilities(inputs)
        shown = _displayed(inputs)
        self.decision.stages.append(Stage(
            name="gatekeeper", model=gk.label, signals={"probabilities": probs, **shown},
            outcome=max(probs, key=probs.get), latency_ms=(time.perf_counter() - started) * 1e3))
        return probs

    def p_weak_suffices(self) -> float:
        """The kNN weak/strong router's P(the weak model suffices) for this query, as a stage."""
        router = self.engine.weak_strong_router
        if router is None:
            raise UserError(f"policy {self.decision.policy!r} needs a trained weak/strong router "
                            "(arag gatekeeper knn --records RUN_DIR; ARAG_WEAK_STRONG_ROUTER names it)")
        vector = self.retrieval().query_vector
        started = time.perf_counter()
        p = router.p_weak_suffices(vector)
        self.decision.stages.append(Stage(name="knn_router", model=f"knn k={router.k} ({len(router.labels)} questions)",
                                          signals={"p_weak_suffices": p}, outcome="scored",
                                          latency_ms=(time.perf_counter() - started) * 1e3))
        return p

    def panel_route(self) -> str:
        """The panel router's action for this query (gatekeeper/panel_router.py), recorded as a
        stage: every action's P(correct) and utility, the cost weight, the router inputs."""
        from gatekeeper.panel_router import available_actions

        router = self.engine.panel_router
        if router is None or isinstance(router, str):
            raise UserError(f"policy {self.decision.policy!r} needs a panel router: "
                            + (router or "none is shipped or trained (arag gatekeeper panel --labels DIR)"))
        retrieval = self.retrieval()
        started = time.perf_counter()
        inputs = router_inputs(self.decision.query, retrieval)
        probs = router.probabilities(inputs)
        weight = self.threshold("adaptive_cost_weight")
        action, utility = router.choose(probs, available_actions(self.engine.models.strong is not None), weight)
        shown = _displayed(inputs)
        self.decision.stages.append(Stage(
            name="panel_router", model=router.label,
            signals={"probabilities": probs, "utility": utility,
                     "costs": {a: m.cost for a, m in router.actions.items()}, **shown},
            thresholds={"adaptive_cost_weight": weight}, outcome=action,
            latency_ms=(time.perf_counter() - started) * 1e3))
        return action

    def p_correct(self, which: str, result: RouteResult) -> float:
        """Calibrated P(this answer is correct) from its log-prob signals ("draft" or "rag")."""
        gk = self._gatekeeper()
        calibrator = gk.draft_calibrator if which == "draft" else gk.rag_calibrator
        return calibrator(answer_signals(result.signals, result.unanswerable))

    def _charge(self, name: str, lm: LanguageModel, gens, signals: dict, thresholds: dict, outcome: str,
                started: float) -> None:
        usage = sum((g.usage for g in gens), start=TokenUsage())
        self.decision.stages.append(Stage(name=name, model=lm.name, engine=lm.label, signals=signals,
                                          thresholds=thresholds, outcome=outcome, usage=usage,
                                          latency_ms=(time.perf_counter() - started) * 1e3))
        self.decision.usage = self.decision.usage + usage
        self.decision.cost += usage.cost(self.engine.models.prices.get(lm.name, Prices()))

    def p_true(self, result: RouteResult, model: str | None = None) -> float | None:
        """P(True) of `result`'s answer, asked of `model` (default: the model that answered), as
        a "verify" stage with its own tokens and cost."""
        lm = self._lm(model or result.generation.model, "reader")
        started = time.perf_counter()
        value, gen = verify.p_true(lm, result.messages, result.generation.text)
        self._charge("verify", lm, [gen], {"p_true": value, "of_route": result.route,
                                           "of_model": result.generation.model}, {}, "p_true", started)
        return value

    def self_consistency(self, result: RouteResult, k: int = 3, temperature: float = 0.7) -> float:
        """Agreement of k sampled answers to the same prompt with `result`'s answer, as a stage."""
        lm = self._lm(result.generation.model, "reader")
        started = time.perf_counter()
        value, samples = verify.self_consistency(lm, result.messages, result.generation.text, k, temperature,
                                                 self.engine.max_new_tokens)
        self._charge("self_consistency", lm, samples, {"agreement": value, "k": k, "temperature": temperature,
                                                       "samples": [s.text for s in samples]}, {}, f"{k} samples",
                     started)
        return value

    def abstain(self, reason: str) -> None:
        """The final answer is "the collection does not answer this", with no citations."""
        if self.events is not None:
            self.events("route", "abstain")
        self.decision.route = "abstain"
        self.decision.answer = ABSTAIN_ANSWER
        self.decision.citations = []
        self.note("abstain", {}, {}, reason)

    def finish(self, result: RouteResult) -> None:
        """`result` is the answer. Its citations are the chunks that support it (verify.support),
        not every chunk it read; a refusal cites nothing."""
        self.decision.route = result.route
        self.decision.answer = result.generation.text
        self.decision.citations = [Citation(h.chunk_id, h.doc_id, h.key, h.score, h.text) for h in result.supporting]

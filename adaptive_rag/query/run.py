"""One request in flight (`QueryRun`): the question and its conversation, the retrieval cache,
the routes a policy may call, the routers it may consult, and the decision record every one of
them appends a stage to, with its tokens, cost and latency. It knows no router kind: a router is
consulted by slot through the gatekeeper.router interface."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from adaptive_rag.decisions import Citation, Decision, Stage
from adaptive_rag.errors import UserError
from adaptive_rag.models.control import GenerationControl
from adaptive_rag.models.lm import LanguageModel
from adaptive_rag.query import answer_routes as routes, verify
from adaptive_rag.query.answer_routes import RouteResult
from adaptive_rag.query.conversation import Conversation
from adaptive_rag.registry import lookup
from adaptive_rag.retrieve import Retrieval
from adaptive_rag.types import SearchHit
from adaptive_rag.usage import Prices, TokenUsage
from gatekeeper.router import Router, RouterVerdict

if TYPE_CHECKING:  # pragma: no cover
    from adaptive_rag.query.engine import QueryEngine

# what an engine that reads answer probes from its own generation adds to the answer's stage
PROBE_FACTS = ("probe_p_wrong", "probe_pre_p_wrong", "probe_ms")
ABSTAIN_ANSWER = "The collection does not answer this question."
# long context reads documents of hits down to this rank until its budget is full: on a corpus of
# short documents (HotpotQA paragraphs) the top-k alone would leave most of the budget unused
LONG_CONTEXT_DEPTH = 50


def _combined_probe(lm: LanguageModel, result: RouteResult) -> dict:
    """Where the answering model's answer probe has a combiner (gatekeeper/answer_probe.py): its
    P(wrong) from the states and the answer's output signals as `probe_p_wrong`, and the states'
    own reading as `probe_state_p_wrong`. Empty otherwise (the engine's reading stands)."""
    raw = result.generation.extra.get("probe_p_wrong")
    probe = lm.answer_probe
    if raw is None or probe is None or not probe.combiner:
        return {}
    values = {**result.signals, "support": result.support, "answer_tokens": result.generation.usage.output_tokens}
    return {"probe_state_p_wrong": raw, "probe_p_wrong": probe.combined_p_wrong(raw, values)}


class QueryRun:
    """One request in flight: the routes a policy may call, each recorded as a stage."""

    def __init__(self, engine: "QueryEngine", decision: Decision, top_k: int, thresholds: Mapping[str, float],
                 control: GenerationControl | None = None, history: Sequence[tuple[str, str]] = (),
                 events: Callable[[str, object], None] | None = None):
        self.engine = engine
        self.decision = decision
        self.control = control or GenerationControl()
        self.events = events
        conversation = Conversation.of(decision.query, history)
        self.history = list(conversation.kept)
        self.question = conversation.question  # what the models read
        self.retrieval_query = conversation.retrieval_query
        if conversation.kept:
            decision.stages.append(Stage(name="conversation", signals=conversation.stage_signals(),
                                         outcome=f"{len(conversation.kept)} earlier turns in the prompt"))
        self.top_k = top_k
        self.thresholds = thresholds
        self._retrievals: dict[int, Retrieval] = {}
        self._drafts: dict[str, RouteResult] = {}
        self._query_vector: list[float] | None = None  # embedded before retrieval (the answer cache's near lookup)

    @property
    def query(self) -> str:
        """The question as the user asked it (without the conversation)."""
        return self.decision.query

    @property
    def collection(self) -> str:
        return self.decision.collection

    def has_model(self, role: str) -> bool:
        return role in self.engine.models.roles()

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
                                                  components=k == self.top_k, query_vector=self._query_vector)
            self._retrievals[k] = result
            scores = [h.score for h in result.hits]
            signals = {"mode": result.mode, "k": k, "hits": len(scores), "top_score": scores[0] if scores else None,
                       "doc_ids": list(dict.fromkeys(h.doc_id for h in result.hits)),
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

    def query_vector(self) -> list[float]:
        """The question's dense vector: the request-depth retrieval's when it ran, else embedded now."""
        for result in self._retrievals.values():
            if result.query_vector is not None:
                return list(result.query_vector)
        if self._query_vector is None:  # kept: the retrieval that follows does not embed it again
            self._query_vector = [float(v) for v in self.engine.retriever.embedder.embed_query(self.retrieval_query)]
        return self._query_vector

    def hits(self, k: int | None = None):
        return self.retrieval(k).hits

    def _record(self, result: RouteResult, lm: LanguageModel, started: float) -> RouteResult:
        gen = result.generation
        outcome = "unanswerable" if result.unanswerable else "answered"
        engine_facts = {k: gen.extra[k] for k in ("cached_prompt_tokens", "slot_wait_ms", "refusal_probe_ms",
                                                  "refusal_probe_new_tokens", *PROBE_FACTS)
                        if k in gen.extra}
        if result.route != "closed_book":  # how much of the answer the chunks it read hold
            engine_facts.update(support=result.support, supporting_chunks=len(result.supporting))
        engine_facts.update(_combined_probe(lm, result))
        self.decision.stages.append(Stage(
            name=result.route, model=lm.name, engine=lm.label,
            signals={**result.signals, "context_tokens": result.context_tokens, "generation_ms": gen.latency_ms,
                     **engine_facts},
            outcome=outcome, usage=gen.usage, latency_ms=(time.perf_counter() - started) * 1e3,
        ))
        self._pay(lm, gen.usage)
        return result

    # Routes. `model` is a panel model's name or role; by default closed-book and RAG run on the
    # reader and long context on the long-context model.

    def closed_book(self, model: str | None = None) -> RouteResult:
        """Run once per request and model: a router that read the draft's log-probs as features
        reuses it."""
        lm = self._lm(model, "reader")
        if lm.name not in self._drafts:
            started = time.perf_counter()
            self._drafts[lm.name] = self._record(routes.closed_book(lm, self.question, self.engine.config.max_new_tokens),
                                                 lm, started)
        return self._drafts[lm.name]

    def rag(self, model: str | None = None) -> RouteResult:
        hits = self.hits()
        lm, started = self._lm(model, "reader"), time.perf_counter()
        return self._record(routes.rag(lm, self.question, hits, self.engine.config.max_new_tokens), lm, started)

    def long_context(self, model: str | None = None) -> RouteResult:
        """Whole documents of the hits, within the long-context budget; on the panel's strong
        model within its own (larger) budget, `strong_long_context_budget`."""
        hits = self.hits(max(self.top_k, LONG_CONTEXT_DEPTH))
        lm, started = self._lm(model, "long_context"), time.perf_counter()
        config = self.engine.config
        strong = self.engine.models.strong
        budget = config.strong_long_context_budget if strong is not None and lm.name == strong.name \
            else config.long_context_budget
        result = routes.long_context(lm, self.engine.retriever.store, self.decision.collection, self.question,
                                     hits, config.max_new_tokens, budget)
        return self._record(result, lm, started)

    def multi_step(self, model: str | None = None) -> RouteResult:
        """Retrieval interleaved with reasoning, or a decomposition into sub-questions
        (query/multi_step.py; ARAG_MULTI_STEP_STRATEGY, at most ARAG_MULTI_STEP_MAX_STEPS
        retrievals), each step a `hop` stage; the final answer call is the `multi_step` stage."""
        from adaptive_rag.query.multi_step import multi_step

        lm, started, before = self._lm(model, "reader"), time.perf_counter(), len(self.decision.stages)
        config = self.engine.config
        streaming, self.control.on_text = self.control.on_text, None  # the hops' text is not the answer's
        try:
            result = multi_step(self, lm, config.multi_step_strategy, config.multi_step_max_steps, config.max_new_tokens,
                                before_answer=lambda: setattr(self.control, "on_text", streaming),
                                notes=config.multi_step_notes)
        finally:
            self.control.on_text = streaming
        hops_ms = sum(s.latency_ms for s in self.decision.stages[before:])
        recorded = self._record(result, lm, started)
        final = self.decision.stages[-1]  # its own call's time: the hops are stages of their own
        final.latency_ms = max(0.0, final.latency_ms - hops_ms)
        return recorded

    def rewrite_cached(self, earlier_question: str, earlier_answer: str, cited: Sequence[SearchHit]) -> RouteResult:
        """The answer cache's near hit on the reader (query/cached.py), recorded as a
        `cache_rewrite` stage with its tokens and cost."""
        lm, started = self._lm(None, "reader"), time.perf_counter()
        return self._record(routes.cache_rewrite(lm, self.question, earlier_question, earlier_answer, cited,
                                                 self.engine.config.max_new_tokens,
                                                 show_earlier=self.engine.config.cache_rewrite == "adapt"), lm, started)

    def same_question(self, earlier_question: str) -> float | None:
        """The answer cache's same-question check (ARAG_CACHE_SAME_QUESTION) of this question
        against `earlier_question`: P(Yes), recorded as a `cache_check` stage with its tokens and
        cost. None when the check is off."""
        role = self.engine.config.cache_same_question
        if role == "off":
            return None
        from adaptive_rag.query.same_question import same_question

        lm, started = self._lm(None, role), time.perf_counter()
        value, gen = same_question(lm, earlier_question, self.question)
        minimum = self.engine.config.cache_same_question_min
        self._charge("cache_check", lm, [gen], {"p_same_question": value, "earlier_question": earlier_question},
                     {"same_question_min": minimum},
                     "the same question" if value is not None and value >= minimum else "another question", started)
        return value

    def route(self, route: str, model: str | None = None) -> RouteResult:
        """Run `route` ("closed_book", "rag" or "long_context") on `model`: a (route, model) pair."""
        lookup(dict.fromkeys(routes.ANSWER_ROUTES), route, "route")
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

    # Routers, by slot (gatekeeper/router.py): the policy names the slot, the settings the router.

    def router(self, slot: str) -> Router:
        """The router serving `slot`; a UserError saying why when none can."""
        found = self.engine.routers.get(slot)
        if isinstance(found, Router):
            return found
        raise UserError(f"policy {self.decision.policy!r} needs a trained {slot} router: "
                        f"{found or 'none is configured (ARAG_ROUTERS)'}")

    def consult(self, slot: str) -> RouterVerdict:
        """The verdict of `slot`'s router, recorded as its stage. The stage's latency is the
        router's own: retrieval or a draft it asked for are stages of their own."""
        router = self.router(slot)
        before = len(self.decision.stages)
        started = time.perf_counter()
        verdict = router.verdict(self)
        own_ms = (time.perf_counter() - started) * 1e3 - sum(s.latency_ms for s in self.decision.stages[before:])
        self.decision.stages.append(Stage(
            name=router.stage, model=router.label, signals=verdict.shown(), thresholds=dict(verdict.thresholds),
            outcome=verdict.choice or "scored", latency_ms=max(own_ms, 0.0)))
        return verdict

    def p_correct(self, slot: str, which: str, result: RouteResult) -> float:
        """`slot`'s router's calibrated P(this answer is correct) from its log-prob signals
        (`which`: "draft" for a closed-book draft, "rag" for a RAG answer)."""
        return self.router(slot).p_answer_correct(which, result.signals, result.unanswerable)

    def _charge(self, name: str, lm: LanguageModel, gens, signals: dict, thresholds: dict, outcome: str,
                started: float) -> None:
        usage = sum((g.usage for g in gens), start=TokenUsage())
        self.decision.stages.append(Stage(name=name, model=lm.name, engine=lm.label, signals=signals,
                                          thresholds=thresholds, outcome=outcome, usage=usage,
                                          latency_ms=(time.perf_counter() - started) * 1e3))
        self._pay(lm, usage)

    def _pay(self, lm: LanguageModel, usage: TokenUsage) -> None:
        """Add a model call's tokens and their price to the decision's totals."""
        self.decision.usage = self.decision.usage + usage
        self.decision.cost += usage.cost(self.engine.models.prices.get(lm.name, Prices()))

    def probe_p_wrong(self, result: RouteResult) -> float | None:
        """The answer probe's P(this answer is wrong), read by the answering model from its own
        generation (None when the answer is empty). A UserError when that model serves no answer
        probe: the policy that asked needs one (ARAG_ANSWER_PROBES)."""
        if "probe_p_wrong" not in result.generation.extra:
            raise UserError(f"policy {self.decision.policy!r} needs an answer probe on model "
                            f"{result.generation.model!r}: train one (arag gatekeeper probe) and serve it "
                            "(ARAG_ANSWER_PROBES)")
        lm = self.engine.models.get(result.generation.model)
        return _combined_probe(lm, result).get("probe_p_wrong", result.generation.extra["probe_p_wrong"])

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
                                                 self.engine.config.max_new_tokens)
        self._charge("self_consistency", lm, samples, {"agreement": value, "k": k, "temperature": temperature,
                                                       "samples": [s.text for s in samples]}, {}, f"{k} samples",
                     started)
        return value

    def judge(self, result: RouteResult, model: str | None = None) -> float | None:
        """The judge's P(`result`'s answer is correct), without a gold answer (query/judge.py), from
        `model` (default: the panel's strong model), as a "judge" stage with its tokens and cost.
        The judge reads the chunks the answer was given (none for closed-book)."""
        from adaptive_rag.query.judge import judge

        lm = self._lm(model, "strong")
        started = time.perf_counter()
        verdict = judge(lm, self.question, [h.text for h in result.sources], result.generation.text)
        self._charge("judge", lm, [verdict.generation],
                     {"p_correct": verdict.p_correct, "of_route": result.route, "of_model": result.generation.model},
                     {}, {True: "correct", False: "wrong", None: "no verdict"}[verdict.correct], started)
        return verdict.p_correct

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

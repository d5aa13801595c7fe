"""The answer cache on the query path (ARAG_CACHE=exact): a question asked again is answered from
the stored answer, with no model call, while that answer still holds.

- What may hit (`cache_request`): the same collection, the same scope (the API key that asked, or
  every key of the collection with ARAG_CACHE_SCOPE=collection) and the same policy, top_k and
  thresholds as they applied (the request's overrides over the server's settings;
  decision_store/cache_sql.py's `policy_key`), so a policy that buys a stronger model is never
  served an answer a weaker one made, and changed settings do not serve answers made under the
  old ones. Requests with chat history,
  and requests with `use_cache=False` (`cache: false` in the body), neither hit nor add.
- An exact hit (`serve_exact`): the same normalised question (adaptive_rag/answer_cache.py) whose
  entry is still valid: every cited document has the content hash it had, and for an answer
  citing nothing the collection's write counter has not moved. The record's `cache` stage names
  the entry and, when the same key made it, the decision it came from; the route, answer and
  citations are the stored ones; tokens and cost are 0. A stale entry is evicted, and the
  question is answered again.
- A miss (`remember`): the policy answers, and a successful answer is stored with its query
  vector, citations and the cited documents' hashes.

The stage is the first one after the queue, so the inspector and `/metrics` see every lookup.
Decisions served from the cache have no router stage, so the learned router never learns from
one twice.
- A near hit (ARAG_CACHE=semantic, `serve_near`): no exact entry, but one whose question's
  embedding is at least as similar as that entry's own threshold. The reader gets the new
  question, the cached question and answer and the answer's supporting chunks, and either adapts
  the answer or declines (the question is then answered the normal way). A rewrite that changes
  the answer's content (`rewrite_agreement` below REWRITE_MIN_AGREEMENT) counts as a decline. A
  rewrite is never added to the cache (the entry it came from stays the one to compare with).
  With ARAG_CACHE_SAME_QUESTION a panel model first judges whether the two questions ask for the
  same information (query/same_question.py, a `cache_check` stage); below
  ARAG_CACHE_SAME_QUESTION_MIN the near hit is declined without a rewrite.
- Thresholds are learned (adaptive_rag/cache_threshold.py): each rewrite's verdict and each
  user's verdict on a cached answer (`cache_feedback`) is an observation of its bucket (collection,
  scope, policy key) and entry, and the entry's threshold becomes the similarity where a hit is
  right with probability 1 - ARAG_CACHE_TARGET_ERROR. The stage shows the threshold that let the
  hit through and the one learned from it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Mapping

from adaptive_rag.answer_cache import normalise_question, still_valid
from adaptive_rag.decisions import Citation, Stage

if TYPE_CHECKING:
    from adaptive_rag.query.run import QueryRun

log = logging.getLogger("adaptive_rag.cache")
OPEN_SCOPE = "-"  # the scope of requests without an API key (an open server, the CLI)
STAGE = "cache"
# a rewrite is served only when it keeps this much of the cached answer's content (rewrite_agreement):
# one that answers something else means the new question is another question, even if the reader
# did not say so (on look-alike questions about the same paragraph the small reader rarely declines)
REWRITE_MIN_AGREEMENT = 0.5


def holds_cache(decisions) -> bool:
    """Whether a decision log has the cache's tables (the SQL stores do; none, or another kind, does not)."""
    from adaptive_rag.decision_store.cache_sql import CacheQueries

    return isinstance(decisions, CacheQueries)


@dataclass(frozen=True)
class CacheRequest:
    collection: str
    scope: str
    policy_key: str
    normalised: str
    owner: str | None


def cache_request(engine, collection: str, query: str, policy: str, top_k: int | None,
                  thresholds: Mapping[str, float] | None, owner: str | None) -> CacheRequest | None:
    """What a lookup for this request compares, or None when the cache is off for it (ARAG_CACHE
    off, or a decision log without the cache table)."""
    from adaptive_rag.decision_store.cache_sql import SHARED, policy_key

    log_ = engine.decision_store
    if engine.config.cache == "off" or not holds_cache(log_):
        return None
    scope = SHARED if engine.config.cache_scope == "collection" else (owner or OPEN_SCOPE)
    return CacheRequest(collection, scope, policy_key(policy, top_k, thresholds), normalise_question(query), owner)


def serve_cached(run: "QueryRun", request: CacheRequest) -> bool:
    """Answer `run` from the cache (True: an exact hit, or a near hit whose rewrite answered), or
    record the miss (False; see the module docstring)."""
    if serve_exact(run, request):
        return True
    return run.engine.config.cache == "semantic" and serve_near(run, request)


def serve_exact(run: "QueryRun", request: CacheRequest) -> bool:
    """Answer `run` from a valid exact entry (True), or record the miss (False; see the module
    docstring). A failing lookup is logged and counts as a miss: the cache never fails a request."""
    engine = run.engine
    signals = {"mode": engine.config.cache, "scope": engine.config.cache_scope, "normalised": request.normalised}
    try:
        entry = engine.decision_store.cache_exact(request.collection, request.scope, request.policy_key,
                                                  request.normalised)
        why = _evicted_if_stale(engine, entry) if entry is not None else None
        if why is not None:
            _stage(run, {**signals, "lookup": "stale", "evicted_entry": entry.id, "reason": why},
                   f"miss: stale entry evicted ({why})")
            return False
    except Exception:  # noqa: BLE001 - logged; the request goes on without the cache
        log.exception("answer cache lookup failed")
        _stage(run, {**signals, "lookup": "miss", "error": "lookup failed"}, "miss: the lookup failed")
        return False
    if entry is None:
        _stage(run, {**signals, "lookup": "miss"}, "miss")
        return False
    same_owner = entry.owner == request.owner
    _stage(run, {**signals, "lookup": "exact_hit", "entry": entry.id, "similarity": 1.0, "cached_at": entry.created_at,
                 "model": entry.model, "from_decision": entry.decision_id if same_owner else None},
           "exact hit: the stored answer, no model call")
    _serve(run, entry.route, entry.answer, [Citation(**c) for c in entry.citations])
    _quietly(engine.decision_store.cache_hit, entry.id)
    return True


def serve_near(run: "QueryRun", request: CacheRequest) -> bool:
    """The near hit (ARAG_CACHE=semantic): the most similar entry above its own threshold, still
    valid, whose answer the reader adapts to this question from the answer's supporting chunks
    (a `cache_rewrite` stage with its tokens and cost). True when the rewrite answered (the
    route and citations are the entry's); a declined rewrite raises the entry's threshold above
    this similarity and the question is answered the normal way (False). The route reaches a
    streaming client only after the rewrite's verdict."""
    from adaptive_rag.types import SearchHit

    engine, decision = run.engine, run.decision
    log_, index = engine.decision_store, engine.cache_index
    stage = next(s for s in reversed(decision.stages) if s.name == STAGE)
    key = (request.collection, request.scope, request.policy_key)
    try:
        index.refresh_if_due(log_)
        engine.cache_thresholds.bucket(log_, index, key)  # refit when due: other replicas' verdicts
        near = index.nearest(request.collection, request.scope, request.policy_key, run.query_vector())
        entry = log_.cache_get(near.entry_id) if near is not None else None
        if near is not None and entry is None:  # evicted by a replica
            index.forget([near.entry_id])
        why = _evicted_if_stale(engine, entry) if entry is not None else None
        if why is not None:
            stage.signals.update(lookup="stale", evicted_entry=entry.id, reason=why, similarity=near.similarity)
            stage.outcome = f"miss: stale near entry evicted ({why})"
            return False
    except Exception:  # noqa: BLE001
        log.exception("answer cache near lookup failed")
        stage.outcome = "miss: the near lookup failed"
        return False
    if entry is None:
        return False
    if _other_question(run, stage, key, entry, near):
        return False
    cited = [SearchHit(c["chunk_id"], c["doc_id"], c["key"], float(c["score"]), c.get("text", ""))
             for c in entry.citations]
    result = run.rewrite_cached(entry.query, entry.answer, cited)
    agreement = None if result.unanswerable else rewrite_agreement(result.generation.text, entry.answer)
    signals = {"entry": entry.id, "similarity": round(near.similarity, 6), "earlier_question": entry.query,
               "earlier_answer": entry.answer, "rewrite_answer": result.generation.text, "agreement": agreement,
               "from_decision": entry.decision_id if entry.owner == request.owner else None}
    thresholds = {"entry_similarity": near.threshold, "rewrite_min_agreement": REWRITE_MIN_AGREEMENT}
    stage.signals.update(signals)
    stage.thresholds.update(thresholds)
    answered = agreement is not None and agreement >= REWRITE_MIN_AGREEMENT
    _verdict(run, stage, key, entry.id, near.similarity, answered, "rewrite")
    if not answered:
        stage.signals["lookup"] = "near_declined"
        stage.outcome = ("near hit declined by the rewrite: answered again" if result.unanswerable else
                         "near hit declined: the rewrite changed the answer, so the questions differ; answered again")
        return False
    stage.signals["lookup"] = "near_hit"
    stage.outcome = "near hit: the cached answer rewritten for this question"
    _serve(run, entry.route, result.generation.text,
           [Citation(h.chunk_id, h.doc_id, h.key, h.score, h.text) for h in result.supporting or cited])
    return True


def _other_question(run: "QueryRun", stage: Stage, key: tuple[str, str, str], entry, near) -> bool:
    """The same-question check before the rewrite (ARAG_CACHE_SAME_QUESTION; a `cache_check`
    stage): True when it judged the new question another one, which declines the near hit without
    a rewrite and teaches the entry's threshold like a declined rewrite. False when it is off or
    judged them the same. A check that gives no P(Yes) declines."""
    engine = run.engine
    if engine.config.cache_same_question == "off":
        return False
    p_same = run.same_question(entry.query)
    minimum = engine.config.cache_same_question_min
    stage.signals.update(entry=entry.id, similarity=round(near.similarity, 6), earlier_question=entry.query,
                         p_same_question=p_same)
    stage.thresholds.update(entry_similarity=near.threshold, same_question_min=minimum)
    if p_same is not None and p_same >= minimum:
        return False
    _verdict(run, stage, key, entry.id, near.similarity, False, "check")
    stage.signals["lookup"] = "near_declined"
    stage.outcome = "near hit declined: the same-question check judged it another question; answered again"
    return True


def rewrite_agreement(rewrite: str, cached: str) -> float:
    """How much of one answer the other holds (the larger of the two token recalls): a light
    rewrite of the same answer keeps its content, a different answer does not."""
    from adaptive_rag.answers import token_recall

    return max(token_recall(rewrite, cached), token_recall(cached, rewrite))


def _verdict(run: "QueryRun", stage: Stage, key: tuple[str, str, str], entry_id: int, similarity: float, right: bool,
             source: str) -> None:
    """A near hit's verdict (served or declined, by `source`): counted on the entry, learned into
    its threshold, and the learned threshold shown in the cache stage."""
    engine = run.engine
    _quietly(engine.decision_store.cache_hit, entry_id, rewrite=right)
    learned = _learn(engine, key, entry_id, run.decision.id, similarity, right, source)
    if learned is not None:
        stage.signals.update(threshold_now=learned.threshold, learned_from=learned.observations)
        stage.thresholds["target_error"] = engine.config.cache_target_error


def _learn(engine, key: tuple[str, str, str], entry_id: int, decision_id: str, similarity: float, correct: bool,
           source: str, weight: float = 1.0):
    """A verdict on a hit, learned (ThresholdLearner.observe); None when storing it failed (logged:
    the request goes on)."""
    try:
        return engine.cache_thresholds.observe(engine.decision_store, engine.cache_index, key, entry_id, decision_id,
                                               similarity, correct, source, weight)
    except Exception:  # noqa: BLE001
        log.exception("learning a cache threshold failed")
        return None


def _evicted_if_stale(engine, entry) -> str | None:
    """Why `entry` no longer holds (`still_valid`), after evicting it from the table and the near
    index; None when it holds."""
    log_ = engine.decision_store
    valid, why = still_valid(entry, engine.retriever.store, log_.collection_version(entry.collection))
    if valid:
        return None
    log_.cache_evict([entry.id])
    engine.cache_index.forget([entry.id])
    return why


def _serve(run: "QueryRun", route: str, answer: str, citations: list[Citation]) -> None:
    """Make a cached (or rewritten) answer the request's final one, telling a streaming client
    its route and then its text."""
    if run.events is not None:
        run.events("route", route)
        run.events("text", answer)
    run.decision.route, run.decision.answer, run.decision.citations = route, answer, citations


def _quietly(write, *args, **kwargs) -> None:
    """A bookkeeping write (hit counts, a learned threshold) that must never fail the request: logged."""
    try:
        write(*args, **kwargs)
    except Exception:  # noqa: BLE001
        log.exception("answer cache bookkeeping (%s) failed", getattr(write, "__name__", write))


def remember(run: "QueryRun", request: CacheRequest) -> None:
    """Store the answer `run` just made (a miss) as an entry; never fails the request."""
    from adaptive_rag.decision_store.cache_sql import CacheEntry

    decision = run.decision
    if decision.status != "ok" or not decision.answer or decision.route is None:
        return
    engine = run.engine
    try:
        cited = sorted({c.doc_id for c in decision.citations})
        hashes = {d.doc_id: d.content_hash for d in engine.retriever.store.get_documents(request.collection, cited)}
        model = next((s.model for s in reversed(decision.stages) if s.model and s.usage.total_tokens), None)
        entry = engine.decision_store.cache_put(CacheEntry(
            collection=request.collection, scope=request.scope, policy_key=request.policy_key,
            policy=decision.policy, normalised=request.normalised, query=decision.query,
            embedding=run.query_vector(), answer=decision.answer,
            citations=[asdict(c) for c in decision.citations], route=decision.route, model=model,
            doc_hashes=hashes, collection_version=engine.decision_store.collection_version(request.collection),
            decision_id=decision.id, owner=request.owner,
            threshold=engine.cache_thresholds.default_threshold(engine.decision_store, engine.cache_index,
                                                                (request.collection, request.scope, request.policy_key))))
        if engine.config.cache == "semantic":
            engine.cache_index.add(entry)
    except Exception:  # noqa: BLE001 - logged; the answer is served uncached
        log.exception("answer cache write failed")
        return
    stage = next((s for s in decision.stages if s.name == STAGE), None)
    if stage is not None:
        stage.signals["added_entry"] = entry.id
        stage.outcome = f"{stage.outcome}; answered and added"


def cache_feedback(engine, record: Mapping, correct: bool | None) -> int:
    """A user's verdict on a decision. A decision served from the cache (exact or near hit) teaches
    its entry's threshold (weight FEEDBACK_WEIGHT, at the hit's similarity). A "wrong" also evicts
    the entry the decision added and the entry it was served from. Returns how many entries went;
    never fails the feedback."""
    from adaptive_rag.cache_threshold import FEEDBACK_WEIGHT

    log_ = engine.decision_store
    if correct is None or not holds_cache(log_):
        return 0
    stage = next((s for s in record.get("stages") or [] if s.get("name") == STAGE), {})
    signals = stage.get("signals") or {}
    served = signals.get("lookup") in ("exact_hit", "near_hit")
    try:
        if served:
            entry = log_.cache_get(signals["entry"])
            if entry is not None:
                _learn(engine, (entry.collection, entry.scope, entry.policy_key), entry.id, record["id"],
                       float(signals.get("similarity", 1.0)), correct, "feedback", FEEDBACK_WEIGHT)
        if correct:
            return 0
        gone = log_.cache_evict_decision(record["id"])
        if served:
            gone += log_.cache_evict([signals["entry"]])
            engine.cache_index.forget([signals["entry"]])
        return gone
    except Exception:  # noqa: BLE001
        log.exception("a verdict on a cached answer failed")
        return 0


def count_write(decisions, collection: str) -> None:
    """Count a write to `collection` (documents added, changed or removed; the collection dropped)
    in the decision log, so cached answers citing nothing stop being served. Writes that bypass
    adaptive-rag are not counted; cited answers are still checked against document hashes."""
    if holds_cache(decisions):
        try:
            decisions.bump_collection_version(collection)
        except Exception:  # noqa: BLE001 - logged; the write itself succeeded
            log.exception("counting a write to %s failed", collection)


def count_write_from_settings(settings, collection: str) -> None:
    """`count_write` for a command that has no decision log open (the CLI's local writes)."""
    from adaptive_rag.decision_store import decision_store_from_settings

    try:
        decisions = decision_store_from_settings(settings)
    except Exception:  # noqa: BLE001 - an unreachable log must not fail an ingest that succeeded
        log.exception("counting a write to %s failed: no decision log", collection)
        return
    try:
        count_write(decisions, collection)
    finally:
        decisions.close()


def _stage(run: "QueryRun", signals: dict, outcome: str) -> None:
    run.decision.stages.append(Stage(name=STAGE, signals=signals, outcome=outcome))

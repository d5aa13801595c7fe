"""The answer cache's near hits (ARAG_CACHE=semantic): the route-based rewrite of a cached answer
for a question close to an earlier one, its verdicts, the thresholds they teach, and the checking
rewrite (ARAG_CACHE_REWRITE=check)."""

from tests.unit.helpers import OTTERS_AND_BEAVERS, cache_stage as _stage


def _semantic_engine(engine_for, similarity=0.5):
    from adaptive_rag.testing import FakeLM

    class Reader(FakeLM):
        """The otter reader; a rewrite prompt is answered when the new question is about sleep,
        and declined otherwise."""

        def generate(self, messages, max_new_tokens, **kwargs):
            prompt = messages[-1].content
            if "Earlier question:" not in prompt:
                return super().generate(messages, max_new_tokens, **kwargs)
            self.calls.append(list(messages))
            new = prompt.rsplit("New question:", 1)[1]
            text = "hold hands" if "sleep" in new else "chase fish" if "dream" in new else "unanswerable"
            return self._gen(text, -0.2, -0.1 if text == "unanswerable" else -5.0, len(prompt.split()))

    reader = Reader("reader", facts={"otters": "hold hands"})
    engine = engine_for(reader, docs=OTTERS_AND_BEAVERS, collection="kb", cache="semantic", cache_similarity=similarity,
                        top_k=1)
    return engine, reader


def test_a_near_question_is_answered_by_a_rewrite_or_declined_and_its_entry_learns(engine_for):
    engine, reader = _semantic_engine(engine_for)
    first = engine.answer("kb", "What do otters do while they sleep?", policy="always_rag")
    assert _stage(first).outcome == "miss; answered and added"
    near = engine.answer("kb", "While asleep, what do sea otters do?", policy="always_rag")
    stage = _stage(near)
    assert stage.outcome.startswith("near hit: the cached answer rewritten"), stage
    assert stage.signals["entry"] and stage.signals["similarity"] >= 0.5 and stage.thresholds["entry_similarity"] == 0.5
    assert near.answer == "hold hands" and near.route == "rag" and [c.doc_id for c in near.citations] == ["otters"]
    rewrite = next(s for s in near.stages if s.name == "cache_rewrite")
    assert rewrite.model == "reader" and rewrite.usage.total_tokens > 0 and near.usage.total_tokens == rewrite.usage.total_tokens
    # a look-alike the rewrite declines: answered the normal way, and the entry's threshold rises
    declined = engine.answer("kb", "What do otters do while they eat?", policy="always_rag")
    stage = _stage(declined)
    assert stage.outcome.startswith("near hit declined") and stage.signals["threshold_now"] > 0.5
    assert [s.name for s in declined.stages if s.name in ("cache_rewrite", "rag")] == ["cache_rewrite", "rag"]
    entry = engine.decision_store.cache_get(stage.signals["entry"])
    assert entry.threshold == stage.signals["threshold_now"] and (entry.rewrites_ok, entry.rewrites_refused) == (1, 1)
    assert engine.decision_store.cache_stats()["kb"]["entries"] == 2  # the declined question became an entry


def test_a_users_verdict_on_a_near_hit_teaches_its_threshold_and_a_wrong_one_evicts(engine_for):
    from adaptive_rag.query.cached import cache_feedback

    engine, _ = _semantic_engine(engine_for)
    engine.answer("kb", "What do otters do while they sleep?", policy="always_rag")
    near = engine.answer("kb", "While asleep, what do sea otters do?", policy="always_rag")
    stage = _stage(near)
    entry_id, key = stage.signals["entry"], ("kb", "-", _policy_key(engine))
    log = engine.decision_store
    assert [w for _, _, w in log.cache_observations(*key, entry_id=entry_id)] == [1.0]  # the rewrite's verdict
    assert cache_feedback(engine, log.get(near.id), True) == 0
    assert [(c, w) for _, c, w in log.cache_observations(*key, entry_id=entry_id)] == [(1.0, 3.0), (1.0, 1.0)]
    before = log.cache_get(entry_id).threshold
    assert cache_feedback(engine, log.get(near.id), False) == 1  # wrong: learned, then evicted
    assert log.cache_get(entry_id) is None and len(log.cache_observations(*key)) == 3
    assert engine.cache_thresholds.default_threshold(log, engine.cache_index, key) >= before


def test_a_rewrite_that_changes_the_answer_counts_as_a_decline(engine_for):
    engine, _ = _semantic_engine(engine_for)
    engine.answer("kb", "What do otters do while they sleep?", policy="always_rag")
    other = engine.answer("kb", "What do otters do while they dream?", policy="always_rag")
    stage = _stage(other)
    assert stage.signals["lookup"] == "near_declined" and "changed the answer" in stage.outcome
    assert stage.signals["rewrite_answer"] == "chase fish" and stage.signals["earlier_answer"] == "hold hands"
    assert stage.signals["agreement"] == 0.0 and stage.thresholds["rewrite_min_agreement"] == 0.5
    assert other.answer != "chase fish" and any(s.name == "rag" for s in other.stages)  # answered the normal way


def _policy_key(engine):
    from adaptive_rag.decision_store.cache_sql import policy_key

    return policy_key("always_rag", engine.config.top_k, engine.thresholds)


def test_near_hits_respect_scope_and_a_strict_threshold(engine_for):
    engine, _ = _semantic_engine(engine_for, similarity=1.0)
    engine.answer("kb", "What do otters do while they sleep?", policy="always_rag", owner="a")
    assert _stage(engine.answer("kb", "While asleep, what do sea otters do?", policy="always_rag",
                                owner="a")).outcome == "miss; answered and added"
    engine, _ = _semantic_engine(engine_for, similarity=0.5)
    engine.answer("kb", "What do otters do while they sleep?", policy="always_rag", owner="a")
    assert _stage(engine.answer("kb", "While asleep, what do sea otters do?", policy="always_rag",
                                owner="b")).outcome.startswith("miss")


def test_the_near_lookup_embeds_the_question_once_for_itself_and_the_retrieval(engine_for):
    engine, _ = _semantic_engine(engine_for)
    engine.answer("kb", "What do otters do while they sleep?", policy="always_rag")  # builds the profile too
    embedder = engine.retriever.embedder
    real, seen = embedder.embed_query, []
    embedder.embed_query = lambda text: seen.append(text) or real(text)
    try:
        engine.answer("kb", "Do beavers build dams?", policy="always_rag")  # a miss in semantic mode
    finally:
        embedder.embed_query = real
    assert seen == ["Do beavers build dams?"]




def test_a_checking_rewrite_answers_blind_and_serves_only_an_agreeing_answer(engine_for):
    from adaptive_rag.testing import FakeLM

    reader = FakeLM("reader", facts={"otters": "hold hands", "beavers": "build dams"})
    engine = engine_for(reader, docs=OTTERS_AND_BEAVERS, collection="kb", cache="semantic", cache_similarity=0.5, top_k=1,
                        cache_rewrite="check")
    engine.answer("kb", "What do otters do while they sleep?", policy="always_rag")
    near = engine.answer("kb", "While asleep, what do sea otters do?", policy="always_rag")
    assert any(s.name == "cache_rewrite" for s in near.stages)
    prompt = reader.calls[-1][-1].content  # the rewrite's: the last model call
    assert "Earlier question:" not in prompt and "hold hands" not in prompt.split("Question:")[-1]
    assert _stage(near).signals["lookup"] == "near_hit" and near.answer == "hold hands"


def test_the_same_question_check_runs_before_the_rewrite_and_declines_another_question(engine_for):
    from adaptive_rag.models.lm import Generation
    from adaptive_rag.query.verify import NO, YES
    from adaptive_rag.testing import FakeLM
    from adaptive_rag.usage import TokenUsage

    class Judging(FakeLM):
        """Says Yes to "same question?" when both questions are about sleep, else No."""

        def generate(self, messages, max_new_tokens=32, first_token_candidates=()):
            prompt = messages[-1].content
            if not prompt.startswith("Question A:"):
                return super().generate(messages, max_new_tokens, first_token_candidates)
            self.calls.append(list(messages))
            a, b = prompt.split("Question B:", 1)
            same = all(("sleep" in q or "asleep" in q) for q in (a, b.split("\n\n", 1)[0]))
            return Generation(YES if same else NO, (), TokenUsage(len(prompt.split()), 1), self.name,
                              extra={"first_token_logprobs": {YES: -0.1 if same else -3.0, NO: -3.0 if same else -0.1}})

    reader = Judging("reader", facts={"otters": "hold hands"})
    engine = engine_for(reader, docs=OTTERS_AND_BEAVERS, collection="kb", cache="semantic", cache_similarity=0.5,
                        top_k=1, cache_rewrite="check", cache_same_question="reader", cache_same_question_min=0.5)
    engine.answer("kb", "What do otters do while they sleep?", policy="always_rag")
    near = engine.answer("kb", "While asleep, what do sea otters do?", policy="always_rag")
    names = [s.name for s in near.stages]
    assert names.index("cache_check") < names.index("cache_rewrite")
    check = next(s for s in near.stages if s.name == "cache_check")
    assert check.signals["p_same_question"] > 0.9 and check.thresholds == {"same_question_min": 0.5}
    assert check.usage.total_tokens > 0 and near.usage.total_tokens > check.usage.total_tokens  # paid, with the rewrite
    assert _stage(near).signals["lookup"] == "near_hit" and near.answer == "hold hands"
    rewrites = sum(m[-1].content.startswith("Question A:") is False for m in reader.calls)

    other = engine.answer("kb", "What do otters do while they eat?", policy="always_rag")
    stage = _stage(other)
    assert stage.signals["lookup"] == "near_declined" and "same-question check" in stage.outcome
    assert stage.signals["p_same_question"] < 0.5 and stage.thresholds["same_question_min"] == 0.5
    assert stage.signals["threshold_now"] > 0.5  # taught like a declined rewrite
    assert "cache_rewrite" not in [s.name for s in other.stages] and any(s.name == "rag" for s in other.stages)
    assert sum(m[-1].content.startswith("Question A:") is False for m in reader.calls) == rewrites + 1  # the RAG answer only
    entry = engine.decision_store.cache_get(stage.signals["entry"])
    assert entry.rewrites_refused == 1


def test_the_same_question_check_is_off_by_default(engine_for):
    engine, reader = _semantic_engine(engine_for)
    engine.answer("kb", "What do otters do while they sleep?", policy="always_rag")
    near = engine.answer("kb", "While asleep, what do sea otters do?", policy="always_rag")
    assert "cache_check" not in [s.name for s in near.stages]
    assert not any(m[-1].content.startswith("Question A:") for m in reader.calls)

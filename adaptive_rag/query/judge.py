"""Reference-free grading of an answer: the judge model reads the question, the context the answer
was given (none for a closed-book answer) and the answer, and replies Yes or No to "is this answer
correct?". No gold answer is needed, because live traffic has none. P(correct) = p(Yes) / (p(Yes) +
p(No)) from the judge's first-token log-probs (verify.p_true_from), so its verdict comes with a
probability; the verdict is P(correct) >= 0.5.

The judge is any panel model (by default the strong one; an OpenAI-compatible endpoint joins the
panel through the catalog). Its prompt is its own conversation, not an extension of the answer's
(unlike P(True), which asks the answering model about itself). `QueryRun.judge` records a `judge`
stage with its tokens and cost. How well it agrees with gold-derived labels is measured by
`python -m eval.judge_agreement`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from adaptive_rag.models.lm import Generation, LanguageModel, Message
from adaptive_rag.query.verify import NO, YES, p_true_from

JUDGE_SYSTEM = ("You grade answers to questions. An answer is correct when it answers the question and agrees with "
                "the context; judge from your own knowledge only when there is no context.")
QUESTION = "Is the answer correct? Reply with one word: Yes or No."
# the context shown to the judge, at most this many characters per chunk (a judge prompt stays short)
CHUNK_CHARS = 1200


@dataclass(frozen=True)
class Judgement:
    p_correct: float | None  # None when the judge's reply gave no Yes/No log-probs
    generation: Generation

    @property
    def correct(self) -> bool | None:
        return None if self.p_correct is None else self.p_correct >= 0.5


def judge_messages(question: str, context: Sequence[str], answer: str) -> list[Message]:
    shown = "\n\n".join(f"[{i}] {text[:CHUNK_CHARS]}" for i, text in enumerate(context, 1)) or "(no context)"
    return [Message("system", JUDGE_SYSTEM),
            Message("user", f"Context:\n{shown}\n\nQuestion: {question}\nAnswer: {answer}\n\n{QUESTION}")]


def judge(lm: LanguageModel, question: str, context: Sequence[str], answer: str) -> Judgement:
    """The judge's P(the answer is correct), one generated token."""
    gen = lm.generate(judge_messages(question, context, answer), 1, first_token_candidates=(YES, NO))
    return Judgement(p_true_from(gen.extra.get("first_token_logprobs") or {}), gen)


def judge_decision(engine, record: dict, model: str | None = None) -> Judgement | None:
    """The judge's verdict on a served decision's final answer, from the record alone. The judge
    reads the chunks a search for the question returns now, at the depth the decision retrieved
    (retrieval is deterministic while the collection is unchanged): what a RAG answer was given,
    and evidence for a closed-book one, as `python -m eval.judge_agreement` measures it. None for
    a decision without an answer of those routes (an abstention, long context, a failure).
    `model`: a panel model name or role (default: the strong model, else the reader)."""
    if record.get("status") != "ok" or record.get("route") not in ("rag", "closed_book") or not record.get("answer"):
        return None
    depth = retrieval_depth(record) or engine.config.top_k
    context = [h.text for h in engine.retriever.search(record["collection"], record["query"], k=int(depth)).hits]
    models = engine.models
    lm = models.get(model) if model else (models.strong or models.reader)
    return judge(lm, record["query"], context, record["answer"])


def retrieval_depth(record: dict) -> int | None:
    """How many chunks a recorded decision retrieved (its `retrieve` stage's k), or None."""
    return next((s.get("signals", {}).get("k") for s in record.get("stages") or [] if s.get("name") == "retrieve"),
                None)


def judge_and_record(engine, record: dict, action: str, model: str | None = None) -> tuple[Judgement, dict | None] | None:
    """Judge a served decision's answer (`judge_decision`) and store the verdict as a `judge`
    outcome of `action` (weight 1, with the judge's model, tokens and cost). Returns the judgement
    and the outcome row (None when the judge gave no verdict), or None when there was nothing to
    judge."""
    verdict = judge_decision(engine, record, model)
    if verdict is None:
        return None
    if verdict.p_correct is None:
        return verdict, None
    row = engine.decision_store.add_outcome(
        record["id"], "judge", action, verdict.p_correct, 1.0, cost=judge_cost(engine, verdict),
        detail={"judge_model": verdict.generation.model, "tokens": verdict.generation.usage.total_tokens})
    return verdict, row


def judge_cost(engine, verdict: Judgement) -> float:
    """What a judgement cost, in the panel's prices."""
    from adaptive_rag.usage import Prices

    gen = verdict.generation
    return gen.usage.cost(engine.models.prices.get(gen.model, Prices()))


def panel_roles(engine) -> dict[str, str | None]:
    """Role -> model name of the serving panel (what a decision's action is read against)."""
    strong = engine.models.strong
    return {"reader": engine.models.reader.name, "strong": strong.name if strong is not None else None}


def judge_recent(engine, limit: int, model: str | None = None) -> dict:
    """Judge up to `limit` of the newest answers of decisions a panel or learned router made that
    the judge has not graded yet, each stored as a `judge` outcome of its action (label: the
    judge's P(correct), weight 1) for the learned router. Returns counts and the judge's tokens."""
    from gatekeeper.router_learning import action_of, panel_stage

    log = engine.decision_store
    done = {"judged": 0, "correct": 0, "no_verdict": 0, "tokens": 0}  # the judge's tokens
    roles, offset = panel_roles(engine), 0
    while done["judged"] + done["no_verdict"] < limit:
        page = log.list(status="ok", limit=200, offset=offset)
        if not page:
            break
        offset += len(page)
        for record in page:
            action = action_of(record, roles)
            if action in (None, "abstain") or panel_stage(record) is None or \
                    any(o["source"] == "judge" for o in log.outcomes(decision_id=record["id"])):
                continue
            judged = judge_and_record(engine, record, action, model)
            if judged is None:
                continue
            verdict, row = judged
            done["tokens"] += verdict.generation.usage.total_tokens
            if row is None:
                done["no_verdict"] += 1
            else:
                done["judged"] += 1
                done["correct"] += int(verdict.correct)
            if done["judged"] + done["no_verdict"] >= limit:
                break
    return done

"""The `multi_step` route: retrieval interleaved with reasoning, for questions whose answer needs
more than one document (multi-hop: the bridge entity is not in the question, so one retrieval
from the question alone often misses the second document).

Two strategies (ARAG_MULTI_STEP_STRATEGY; a name registry, `STRATEGIES`), both bounded by
ARAG_MULTI_STEP_MAX_STEPS retrievals (3 by default):

- **interleaved** (IRCoT, Trivedi et al. 2023): retrieve for the question; the model writes the
  next reasoning sentence from the chunks so far, or "So the answer is: ..." (not at the first
  step, so at least two retrievals run when the limit allows); the sentence is the next retrieval
  query. It stops at an answer or at the step limit.
- **decompose**: the model writes up to max-steps sub-questions (a later one may refer to an earlier
  one's answer as #1, #2); each is answered from its own retrieval, in order, with the earlier
  answers substituted.

Both end with one answer call over every distinct chunk read (in the order found, within the
model's window), with RAG's prompt: the model may reply "unanswerable", which behaves as RAG's
refusal. With ARAG_MULTI_STEP_NOTES the call also reads the reasoning or the sub-answers as notes
(off by default: on HotpotQA dev the 1.5B, shown reasoning sentences, answered in sentences and
scored 0.341 F1 against 0.444 without them). Citations are the chunks that support
the final answer (verify.support), not every chunk retrieved along the way.

Each retrieval and each intermediate call is a `hop` stage: its step, query, hits (keys and
document ids), the sentence or sub-answer it produced, tokens, cost and latency. The final call is
the `multi_step` stage. The inspector shows the hops as a chain.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from adaptive_rag.decisions import Stage
from adaptive_rag.models.lm import Generation, LanguageModel, Message
from adaptive_rag.query import prompts
from adaptive_rag.query.answer_routes import RouteResult, _answer, fitting_chunks, rag
from adaptive_rag.query.signals import REFUSAL
from adaptive_rag.registry import lookup
from adaptive_rag.types import SearchHit

if TYPE_CHECKING:  # pragma: no cover
    from adaptive_rag.query.run import QueryRun

ROUTE = "multi_step"
HOP = "hop"
STEP_TOKENS = 48  # a reasoning sentence, or the list of sub-questions (per line)
_ANSWER_IS = re.compile(r"so the answer is\s*:?\s*(.*)", re.IGNORECASE | re.DOTALL)
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\(?\d+[.):]|q\d+[.):]?|sub-?question\s*\d*\s*[.:]?)\s*", re.IGNORECASE)


@dataclass
class Trail:
    """What the steps found: the distinct chunks in the order read, and the notes (reasoning
    sentences or sub-question/answer pairs) the final call gets."""

    hits: list[SearchHit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _seen: set = field(default_factory=set)

    def add(self, hits: Sequence[SearchHit]) -> list[SearchHit]:
        """Keep the hits not read before; returns them."""
        new = [h for h in hits if h.chunk_id not in self._seen]
        self._seen.update(h.chunk_id for h in new)
        self.hits.extend(new)
        return new


def _hop_signals(step: int, query: str, hits: Sequence[SearchHit], new: Sequence[SearchHit]) -> dict:
    return {"step": step, "query": query, "hits": [h.key for h in hits], "doc_ids": list(dict.fromkeys(h.doc_id for h in hits)),
            "new_chunks": len(new)}


def _context(lm: LanguageModel, question: str, hits: Sequence[SearchHit], notes: Sequence[str],
             max_new_tokens: int) -> tuple[str, list[SearchHit]]:
    """The chunks read so far that fit the model's window beside the prompt and the notes shown."""
    budget = (lm.context_window - prompts.overhead_tokens(lm.count_tokens, question) - lm.count_tokens("\n".join(notes))
              - max_new_tokens - 16)
    return fitting_chunks(hits, budget, lm.count_tokens)


class Strategy(ABC):
    """How the steps gather chunks and notes before the final answer call."""

    name = ""
    notes_title = "Notes"

    @abstractmethod
    def gather(self, q: "QueryRun", lm: LanguageModel, steps: int, trail: Trail) -> None:
        """Run the steps, recording each as a `hop` stage; leave what they found in `trail`."""


class Interleaved(Strategy):
    name = "interleaved"
    notes_title = "Reasoning so far"

    def gather(self, q, lm, steps, trail):
        query = q.retrieval_query
        for step in range(1, steps + 1):
            search(q, step, query, trail)
            if step == steps:
                return
            context, _ = _context(lm, q.question, trail.hits, trail.notes, STEP_TOKENS)
            started = time.perf_counter()
            gen = lm.generate(reasoning_prompt(q.question, context, trail.notes, may_answer=step > 1), STEP_TOKENS)
            sentence = first_sentence(gen.text)
            found = _ANSWER_IS.search(sentence)
            trail.notes.append(sentence)
            record_call(q, lm, gen, step, {"thought": sentence, "answer_found": bool(found)},
                        "answer found" if found else "next query", started)
            if found or not sentence:
                return
            query = sentence


class Decompose(Strategy):
    name = "decompose"
    notes_title = "Answers to parts of the question"

    def gather(self, q, lm, steps, trail):
        started = time.perf_counter()
        gen = lm.generate(decompose_prompt(q.question, steps), STEP_TOKENS * steps)
        subs = sub_questions(gen.text, steps) or [q.question]
        record_call(q, lm, gen, 0, {"sub_questions": subs}, f"{len(subs)} sub-questions", started)
        answers: list[str] = []
        for step, sub in enumerate(subs, 1):
            query = substitute(sub, answers)
            hits = search(q, step, query, trail)
            started = time.perf_counter()
            sub_answer = rag(lm, query, hits, q.engine.config.max_new_tokens)  # RAG's budget, prompt and refusal
            answer, refused = sub_answer.generation.text.strip(), sub_answer.unanswerable
            answers.append("unknown" if refused else answer)
            trail.notes.append(f"{query} -> {answers[-1]}")
            record_call(q, lm, sub_answer.generation, step,
                        {"sub_question": query, "partial_answer": answer, "unanswerable": refused},
                        "unanswerable" if refused else "answered", started)


STRATEGIES: dict[str, type[Strategy]] = {s.name: s for s in (Interleaved, Decompose)}


def search(q: "QueryRun", step: int, query: str, trail: Trail) -> list[SearchHit]:
    """One hop's retrieval (top_k hybrid hits for `query`), recorded as a `hop` stage."""
    started = time.perf_counter()
    result = q.engine.retriever.search(q.collection, query, k=q.top_k)
    new = trail.add(result.hits)
    q.decision.stages.append(Stage(name=HOP, model=q.engine.retriever.embedder.name,
                                   signals={"kind": "retrieve", **_hop_signals(step, query, result.hits, new)},
                                   outcome=f"{len(result.hits)} chunks, {len(new)} new",
                                   latency_ms=(time.perf_counter() - started) * 1e3))
    return list(result.hits)


def record_call(q: "QueryRun", lm: LanguageModel, gen: Generation, step: int, signals: dict, outcome: str,
                started: float) -> None:
    """An intermediate model call as a `hop` stage, paid like any other."""
    q.decision.stages.append(Stage(name=HOP, model=lm.name, engine=lm.label,
                                   signals={"kind": "generate", "step": step, **signals, "generation_ms": gen.latency_ms},
                                   outcome=outcome, usage=gen.usage, latency_ms=(time.perf_counter() - started) * 1e3))
    q._pay(lm, gen.usage)


def first_sentence(text: str) -> str:
    """The reply's first line, cut after its first sentence unless it states the answer."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if _ANSWER_IS.search(line):
        return line
    match = re.match(r"(.+?[.!?])(\s|$)", line)
    return (match.group(1) if match else line).strip()


def sub_questions(text: str, limit: int) -> list[str]:
    """The sub-questions of a decomposition reply: one per line, list marks removed, at most `limit`."""
    out = []
    for line in text.splitlines():
        line = _LIST_MARK.sub("", line).strip()
        if line and line.endswith("?") and line not in out:
            out.append(line)
    return out[:limit]


def substitute(sub_question: str, answers: Sequence[str]) -> str:
    """Put earlier sub-answers where the sub-question refers to them (#1, #2, ...)."""
    return re.sub(r"#(\d+)", lambda m: answers[int(m.group(1)) - 1] if 0 < int(m.group(1)) <= len(answers)
                  else m.group(0), sub_question)


def reasoning_prompt(question: str, context: str, notes: Sequence[str], may_answer: bool = True) -> list[Message]:
    """The next reasoning sentence. The first step may not answer (`may_answer` False): on HotpotQA
    dev the 0.5B and 1.5B models answered at once every time, so the route never retrieved twice."""
    so_far = "\n".join(notes) or "(none yet)"
    finish = (" If the context already answers the question, write \"So the answer is: <short answer>\" instead."
              if may_answer else "")
    return [Message("system", prompts.SYSTEM),
            Message("user", f"Context:\n{context}\n\nQuestion: {question}\nReasoning so far:\n{so_far}\n\n"
                            "Write the next reasoning step as one short sentence that states a fact from the context "
                            f"or names what must still be found.{finish}\nNext step:")]


def decompose_prompt(question: str, steps: int) -> list[Message]:
    return [Message("system", "You split questions into simple questions. You never answer them."),
            Message("user", f"Split the question into at most {steps} simple questions that can each be answered "
                            "from one document, in the order they must be answered, one per line. A later question "
                            "may refer to the answer of an earlier one as #1 or #2. If the question is already "
                            f"simple, write it unchanged.\nQuestion: {question}\nSimple questions:")]


def final_prompt(question: str, context: str, notes_title: str, notes: Sequence[str]) -> list[Message]:
    """The final answer call. With notes it asks for the answer alone, not a sentence: on HotpotQA
    dev the 1.5B model, shown reasoning sentences, answered in sentences ("Yes, both X and Y
    were ...") where RAG's prompt got "Yes"."""
    if not notes:
        return prompts.with_context(question, context)
    shown = "\n".join(notes)
    return [Message("system", prompts.SYSTEM),
            Message("user", f"Context:\n{context}\n\n{notes_title}:\n{shown}\n\n"
                            "Answer the question with a short phrase copied from the context (or yes or no), "
                            "never a whole sentence. "
                            f"If the context does not contain the answer, reply exactly \"{REFUSAL}\".\n"
                            f"Question: {question}\nAnswer:")]


def multi_step(q: "QueryRun", lm: LanguageModel, strategy: str, steps: int, max_new_tokens: int,
               before_answer=lambda: None, notes: bool = False) -> RouteResult:
    """Run `strategy`'s steps on `lm`, then the final answer call (see the module docstring), which
    reads the steps' notes beside the chunks unless `notes` is False (ARAG_MULTI_STEP_NOTES);
    `before_answer()` runs between them (a streaming client hears only the final call's text).
    Returns the final call's RouteResult (route `multi_step`), not yet recorded."""
    chosen = lookup(STRATEGIES, strategy, "multi-step strategy (ARAG_MULTI_STEP_STRATEGY)")()
    trail = Trail()
    chosen.gather(q, lm, max(1, steps), trail)
    shown = trail.notes if notes else []
    context, used = _context(lm, q.question, trail.hits, shown, max_new_tokens)
    before_answer()
    result = _answer(ROUTE, lm, final_prompt(q.question, context, chosen.notes_title, shown), max_new_tokens,
                     used, lm.count_tokens(context))
    signals = {**result.signals, "strategy": chosen.name, "steps": sum(1 for s in q.decision.stages
                                                                       if s.name == HOP and s.signals.get("kind") == "retrieve"),
               "chunks_read": len(used), "chunks_found": len(trail.hits)}
    return RouteResult(result.route, result.generation, signals, result.unanswerable, result.sources,
                       result.context_tokens, result.messages, result.support, result.supporting)


__all__ = ["STRATEGIES", "Strategy", "Interleaved", "Decompose", "multi_step", "first_sentence", "sub_questions",
           "substitute", "ROUTE", "HOP"]

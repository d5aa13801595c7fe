"""The answer routes (ANSWER_ROUTES; a policy may also abstain, without a model). The first three
run one LM call and return its generation plus what it read:

- closed_book: the question alone;
- rag: the top-k hybrid chunks, Self-Route prompt (the reader may reply "unanswerable");
- long_context: whole source documents of the hits (down to rank 50), in retrieval order, until the long-context
  model's budget is full; a document longer than the remaining budget contributes the window
  around its best-matching chunk instead of its first pages.

`multi_step` (query/multi_step.py) runs several retrievals and calls, recorded as `hop` stages,
and ends with one answer call like these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from adaptive_rag.query import prompts, verify
from adaptive_rag.models.lm import Generation, LanguageModel, Message
from adaptive_rag.query.signals import REFUSAL, logprob_signals, says_unanswerable
from adaptive_rag.store.base import Store
from adaptive_rag.types import SearchHit, StoredDocument

ANSWER_ROUTES = ("closed_book", "rag", "long_context", "multi_step")  # and "abstain", which answers without a model


@dataclass(frozen=True)
class RouteResult:
    route: str
    generation: Generation
    signals: dict
    unanswerable: bool
    sources: list[SearchHit] = field(default_factory=list)
    context_tokens: int = 0
    messages: tuple[Message, ...] = ()  # the prompt (verification extends it)
    # verify.support of the answer over `sources`: the best share one chunk holds, and the
    # chunks that support it (the citations); a refusal has none
    support: float | None = None
    supporting: tuple[SearchHit, ...] = ()


def _answer(route: str, lm: LanguageModel, messages: Sequence[Message], max_new_tokens: int,
            sources: Sequence[SearchHit] = (), context_tokens: int = 0) -> RouteResult:
    """Generate `route`'s answer (asking for the refusal word's log-prob) and read its signals."""
    gen = lm.generate(messages, max_new_tokens, first_token_candidates=(REFUSAL,))
    unanswerable = says_unanswerable(gen.text)
    share, supporting = verify.support("" if unanswerable else gen.text, sources)
    return RouteResult(route, gen, logprob_signals(gen), unanswerable, list(sources), context_tokens, tuple(messages),
                       share, tuple(supporting))


def closed_book(reader: LanguageModel, question: str, max_new_tokens: int) -> RouteResult:
    return _answer("closed_book", reader, prompts.closed_book(question), max_new_tokens)


def _numbered(i: int, hit: SearchHit, text: str) -> str:
    return f"[{i + 1}] {hit.title}\n{text}" if hit.title else f"[{i + 1}] {text}"


def fitting_chunks(hits: Sequence[SearchHit], budget_tokens: int, count_tokens) -> tuple[str, list[SearchHit]]:
    """The RAG context: the hits in rank order while they fit `budget_tokens` (the reader's window
    less the prompt and the answer); a first hit longer than the budget contributes the part of it
    that fits. A large top_k with a small model therefore reads fewer chunks instead of failing."""
    parts: list[str] = []
    used: list[SearchHit] = []
    remaining = budget_tokens
    for i, hit in enumerate(hits):
        part = _numbered(i, hit, hit.text)
        cost = count_tokens(part) + 2
        if cost > remaining:
            if not parts and remaining > 16:
                header = count_tokens(_numbered(i, hit, "")) + 2
                parts.append(_numbered(i, hit, window_around(hit.text, hit.text[:64], remaining - header, count_tokens)))
                used.append(hit)
            break
        parts.append(part)
        used.append(hit)
        remaining -= cost
    return "\n\n".join(parts), used


def rag(reader: LanguageModel, question: str, hits: Sequence[SearchHit], max_new_tokens: int) -> RouteResult:
    budget = reader.context_window - prompts.overhead_tokens(reader.count_tokens, question) - max_new_tokens
    context, used = fitting_chunks(hits, budget, reader.count_tokens)
    return _answer("rag", reader, prompts.with_context(question, context), max_new_tokens, used,
                   reader.count_tokens(context))


def cache_rewrite(reader: LanguageModel, question: str, earlier_question: str, earlier_answer: str,
                  cited: Sequence[SearchHit], max_new_tokens: int, show_earlier: bool = True) -> RouteResult:
    """The answer cache's near hit (query/cached.py): the reader adapts a cached answer to a new
    wording of its question from the answer's own supporting chunks, or says it does not answer
    it (the route `cache_rewrite`; `unanswerable` is that refusal)."""
    context = "\n\n".join(_numbered(i, h, h.text) for i, h in enumerate(cited))
    return _answer("cache_rewrite", reader, prompts.rewrite(question, earlier_question, earlier_answer, context, show_earlier),
                   max_new_tokens, cited, reader.count_tokens(context) if context else 0)


def window_around(text: str, anchor: str, budget_tokens: int, count_tokens) -> str:
    """The part of `text` centred on `anchor` (a chunk of it) that fits `budget_tokens`."""
    total = count_tokens(text)
    if total <= budget_tokens:
        return text
    chars = max(1, int(len(text) * budget_tokens / total))
    centre = text.find(anchor)
    centre = len(text) // 2 if centre < 0 else centre + len(anchor) // 2
    start = max(0, min(centre - chars // 2, len(text) - chars))
    window = text[start:start + chars]
    while window and count_tokens(window) > budget_tokens:  # chars/token varies inside a document
        cut = max(1, len(window) // 20)
        window = window[cut // 2: len(window) - (cut - cut // 2)]
    return window


def long_context_text(store: Store, collection: str, hits: Sequence[SearchHit], budget_tokens: int,
                      count_tokens) -> tuple[str, list[SearchHit]]:
    """Documents of the hits in retrieval order, whole while they fit, then a window."""
    order: list[str] = []
    best: dict[str, SearchHit] = {}
    for hit in hits:
        if hit.doc_id not in best:
            order.append(hit.doc_id)
            best[hit.doc_id] = hit
    docs: dict[str, StoredDocument] = {d.doc_id: d for d in store.get_documents(collection, order)}
    parts, used, remaining = [], [], budget_tokens
    for doc_id in order:
        doc = docs.get(doc_id)
        if doc is None or remaining < 64:
            continue
        header = f"# {doc.title or doc.doc_id}\n"
        body = window_around(doc.text, best[doc_id].text, remaining - count_tokens(header), count_tokens)
        parts.append(header + body)
        used.append(best[doc_id])
        remaining -= count_tokens(header + body) + 2
    return "\n\n".join(parts), used


def long_context(lm: LanguageModel, store: Store, collection: str, question: str, hits: Sequence[SearchHit],
                 max_new_tokens: int, budget_tokens: int | None = None) -> RouteResult:
    budget = lm.context_window - prompts.overhead_tokens(lm.count_tokens, question) - max_new_tokens
    if budget_tokens is not None:
        budget = min(budget, budget_tokens)
    context, used = long_context_text(store, collection, hits, budget, lm.count_tokens)
    return _answer("long_context", lm, prompts.with_context(question, context), max_new_tokens, used,
                   lm.count_tokens(context))

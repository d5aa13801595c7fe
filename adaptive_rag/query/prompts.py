"""Prompts of the three routes. Short and explicit: small local readers follow them best."""

from __future__ import annotations

from adaptive_rag.models.lm import Message
from adaptive_rag.query.signals import REFUSAL

SYSTEM = "You answer questions with a short phrase taken from what you know or from the given context."


def closed_book(question: str) -> list[Message]:
    return [Message("system", SYSTEM),
            Message("user", f"Answer with a short phrase only.\nQuestion: {question}\nAnswer:")]


def with_context(question: str, context: str) -> list[Message]:
    """Self-Route: the reader may decline when the context does not hold the answer."""
    return [Message("system", SYSTEM),
            Message("user", f"Context:\n{context}\n\nAnswer the question with a short phrase copied from the context. "
                            f"If the context does not contain the answer, reply exactly \"{REFUSAL}\".\n"
                            f"Question: {question}\nAnswer:")]


def rewrite(question: str, earlier_question: str, earlier_answer: str, context: str,
            show_earlier: bool = True) -> list[Message]:
    """The answer cache's near hit: adapt a cached answer to a paraphrase, or decline. Short on
    purpose (the cached answer's supporting chunks only): prompt processing dominates on a CPU.
    Without `show_earlier` (ARAG_CACHE_REWRITE=check) the reader answers the new question from
    those chunks alone, RAG's prompt, so it cannot repeat the cached answer for a different question."""
    if not show_earlier:
        return with_context(question, context)
    shown = f"Context:\n{context}\n\n" if context else ""
    return [Message("system", SYSTEM),
            Message("user", f"{shown}Earlier question: {earlier_question}\nIts answer: {earlier_answer}\n\n"
                            f"Answer the new question with a short phrase taken from the earlier answer or the context. "
                            f"If they do not answer the new question, reply exactly \"{REFUSAL}\".\n"
                            f"New question: {question}\nAnswer:")]


def overhead_tokens(count_tokens, question: str) -> int:
    """Tokens a context prompt costs besides the context itself (budgeting long context)."""
    return sum(count_tokens(m.content) for m in with_context(question, "")) + 32

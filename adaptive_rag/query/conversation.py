"""Earlier chat turns: which of them a request keeps, and the question and retrieval query they
make. A follow-up such as "and its population?" needs them: the models read the kept turns
before the question, and retrieval also reads the previous user turn (the newest words count
most: a long earlier turn is cut from its start)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from adaptive_rag.limits import MAX_QUERY_CHARS

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


@dataclass(frozen=True)
class Conversation:
    """`question`: what the models read; `retrieval_query`: what retrieval searches for;
    `kept` / `dropped`: the earlier turns in the prompt and how many did not fit."""

    question: str
    retrieval_query: str
    kept: tuple[tuple[str, str], ...] = ()
    dropped: int = 0

    @classmethod
    def of(cls, query: str, history: Sequence[tuple[str, str]] = ()) -> "Conversation":
        kept = kept_turns(history)
        if not kept:
            return cls(query, query, (), len(history))
        turns = "\n".join(f"{role}: {text}" for role, text in kept)
        earlier = [text for role, text in kept if role == "user"]
        retrieval_query = f"{earlier[-1]} {query}"[-MAX_QUERY_CHARS:] if earlier else query
        return cls(f"(Conversation so far:\n{turns})\n{query}", retrieval_query, tuple(kept), len(history) - len(kept))

    def stage_signals(self) -> dict:
        return {"turns_kept": len(self.kept), "turns_dropped": self.dropped, "retrieval_query": self.retrieval_query}

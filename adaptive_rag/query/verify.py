"""Answer-verification signals: numbers about a proposed answer; policies turn them into keep,
escalate or abstain. Each that calls a model returns its generations, so their tokens are
recorded and paid for like any other stage.

- P(True) (Kadavath et al. 2022): the answer's own prompt, the answer as the model's turn, then
  "Is that answer correct ...? Reply Yes or No."; P(True) = p(Yes) / (p(Yes) + p(No)) from the
  first-token log-probs of "Yes" and "No". The question extends the answer prompt, so on the
  llama.cpp engine only the few new tokens are computed (the prefix is in the prompt cache).
- Self-consistency: k sampled answers (temperature, seeds 0..k-1); agreement = mean token F1 of
  each sample with the greedy answer (1.0: every sample says the same thing).
- Agreement between two answers (closed-book draft vs RAG, weak vs strong model): token F1.
- Retrieval support: for each retrieved chunk, the share of the answer's normalised tokens it
  holds (`answers.token_recall`); support = the best share; the chunks with share >=
  SUPPORT_MIN are the answer's citations (not merely the top-k). A yes/no answer (HotpotQA's
  comparison questions) cannot be checked word by word: its support is None and it keeps the
  chunks it was given.
Missing inputs give None, never a made-up number.
"""

from __future__ import annotations

import math
from typing import Sequence

from adaptive_rag.answers import normalize_answer, token_f1, token_recall
from adaptive_rag.models.lm import Generation, LanguageModel, Message
from adaptive_rag.types import SearchHit

YES, NO = "Yes", "No"
SUPPORT_MIN = 0.5
P_TRUE_QUESTION = ("Is the answer you just gave correct, and supported by the context if there was one? "
                   "Reply with one word: Yes or No.")


def p_true_messages(answer_messages: Sequence[Message], answer: str) -> list[Message]:
    return [*answer_messages, Message("assistant", answer), Message("user", P_TRUE_QUESTION)]


def p_true(lm: LanguageModel, answer_messages: Sequence[Message], answer: str) -> tuple[float | None, Generation]:
    gen = lm.generate(p_true_messages(answer_messages, answer), 1, first_token_candidates=(YES, NO))
    return p_true_from(gen.extra.get("first_token_logprobs") or {}), gen


def p_true_from(logprobs: dict) -> float | None:
    """p(Yes) / (p(Yes) + p(No)); p(Yes) alone when "No" has no value; None without "Yes"."""
    yes, no = logprobs.get(YES), logprobs.get(NO)
    if yes is None:
        return None
    if no is None:
        return math.exp(yes)
    top = max(yes, no)
    return math.exp(yes - top) / (math.exp(yes - top) + math.exp(no - top))


def self_consistency(lm: LanguageModel, messages: Sequence[Message], greedy_answer: str, k: int = 3,
                     temperature: float = 0.7, max_new_tokens: int = 32) -> tuple[float, list[Generation]]:
    samples = [lm.sample(messages, max_new_tokens, temperature, seed) for seed in range(k)]
    return agreement_with(greedy_answer, [s.text for s in samples]), samples


def agreement_with(answer: str, others: Sequence[str]) -> float:
    return sum(token_f1(o, answer) for o in others) / len(others) if others else 0.0


def agreement(a: str, b: str) -> float:
    return token_f1(a, b)


JUDGMENTS = frozenset({"yes", "no"})


def support(answer: str, hits: Sequence[SearchHit]) -> tuple[float | None, list[SearchHit]]:
    """(best share of the answer found in one chunk, the chunks holding at least SUPPORT_MIN of
    it, best first). An empty answer has no support (None, []); a yes/no answer (None, hits)."""
    if normalize_answer(answer) in JUDGMENTS:
        return None, list(hits)
    if not answer.strip() or not hits:
        return (None if not answer.strip() else 0.0), []
    shares = [(token_recall(answer, f"{h.title}\n{h.text}"), i) for i, h in enumerate(hits)]
    supporting = [hits[i] for share, i in sorted(shares, key=lambda s: (-s[0], s[1])) if share >= SUPPORT_MIN]
    return max(share for share, _ in shares), supporting

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

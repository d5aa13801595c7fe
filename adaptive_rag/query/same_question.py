"""The answer cache's "same question?" check (ARAG_CACHE_SAME_QUESTION): before a near hit's
rewrite, a panel model reads the cached question and the new one, and says whether they ask for the
same information. P(Yes) comes from its first token's log-probs, as P(True) does (query/verify.py).

The prompt holds the two questions only, no chunks, so the call is short. On the cache's look-alike
traffic the 1.5B model separates paraphrases from look-alikes better than similarity among the
pairs similar enough to matter (AUROC 0.900 vs 0.810 at similarity 0.8 or more), and the 0.5B
reader worse (0.681); `python -m eval.cache_separation` and docs/performance.md.
"""

from __future__ import annotations

from adaptive_rag.models.lm import Generation, LanguageModel, Message
from adaptive_rag.query.verify import NO, YES, p_true_from

SYSTEM = "You compare two questions. You never answer them."
PROMPT = ("Question A: {earlier}\nQuestion B: {new}\n\nDo A and B ask for exactly the same information, so that a "
          "correct answer to A is also a correct answer to B? Reply Yes or No.")


def messages(earlier: str, new: str) -> list[Message]:
    return [Message("system", SYSTEM), Message("user", PROMPT.format(earlier=earlier, new=new))]


def same_question(lm: LanguageModel, earlier: str, new: str) -> tuple[float | None, Generation]:
    """P(Yes) that `new` asks what `earlier` asked (None when the model gave no log-prob for Yes),
    and the one-token generation (its usage is the check's cost)."""
    gen = lm.generate(messages(earlier, new), 1, first_token_candidates=(YES, NO))
    return p_true_from(gen.extra.get("first_token_logprobs") or {}), gen

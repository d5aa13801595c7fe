"""Comparing short answers: the official SQuAD v1.1 normalisation (lowercase, strip punctuation,
drop the articles a/an/the, collapse white space) and token F1 over the bags of normalised tokens.
Used at query time (agreement between answers, whether a chunk supports an answer) and by eval's
EM/F1, so both read answers the same way."""

from __future__ import annotations

import re
import string
from collections import Counter

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    """F1 = 2PR / (P + R) over the normalised tokens' multiset overlap; 0 when either is empty."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def token_recall(answer: str, text: str) -> float:
    """Share of the answer's normalised tokens (as a multiset) found in `text`: 1.0 when the text
    holds every word of the answer."""
    ans = Counter(normalize_answer(answer).split())
    if not ans:
        return 0.0
    have = Counter(normalize_answer(text).split())
    return sum((ans & have).values()) / sum(ans.values())

"""Log-prob signals of a generation: numbers only; policies turn them into routes.

- mean_logprob, min_logprob, first_logprob: over the answer's tokens (natural log);
- mean_entropy: mean over steps of H = -sum_i p_i ln p_i over the top-k alternatives, the p_i
  renormalised to sum to 1 (a lower bound on the full-vocabulary entropy's ordering);
- refusal_logprob: log-prob of the refusal word's first token at the first step;
- refusal_margin: first_logprob - refusal_logprob (large = the answer is preferred to refusing).
Missing inputs give None, never a made-up number.
"""

from __future__ import annotations

import math

from adaptive_rag.models.lm import Generation

REFUSAL = "unanswerable"


def logprob_signals(gen: Generation) -> dict[str, float | None]:
    if not gen.has_logprobs:
        base: dict[str, float | None] = {"mean_logprob": None, "min_logprob": None, "first_logprob": None,
                                         "mean_entropy": None}
    else:
        lps = [t.logprob for t in gen.tokens]
        entropies = []
        for t in gen.tokens:
            if t.top:
                ps = [math.exp(lp) for _, lp in t.top]
                total = sum(ps)
                entropies.append(-sum(p / total * math.log(p / total) for p in ps if p > 0))
        base = {"mean_logprob": sum(lps) / len(lps), "min_logprob": min(lps), "first_logprob": lps[0],
                "mean_entropy": sum(entropies) / len(entropies) if entropies else None}
    refusal = (gen.extra.get("first_token_logprobs") or {}).get(REFUSAL)
    base["refusal_logprob"] = refusal
    base["refusal_margin"] = (base["first_logprob"] - refusal
                              if refusal is not None and base["first_logprob"] is not None else None)
    return base


def says_unanswerable(text: str) -> bool:
    """The Self-Route verdict in text: the reader replied with the refusal word."""
    cleaned = text.strip().strip(".!\"'`*").lower()
    return cleaned.startswith(REFUSAL)

"""Router features: cheap numbers known before any context goes into a model.

Groups (an artifact records which it was trained with, and the exact names):
- `form`: the question's length and shape. Wh-word, yes/no form, digits and capitalised words
  (a named-entity proxy) separate "Who wrote X?" (closed-book may know) from "What did the
  author argue in the second part?" (needs the document).
- `retrieval`: hybrid retrieval already ran (milliseconds), so its confidence is free. Top dense
  cosine and its gap to the second, top BM25 score (raw, and per query term, since BM25 grows with
  query length), how much the dense and BM25 rankings agree, and how many documents the top hits
  spread over (a question whose evidence is in one place suits RAG; a scattered one may need more).
- `retrieval_norm`: the same signals on the collection's own scale (adaptive_rag/retrieval_profile.py:
  0 = the score a query of random words from the collection reaches, 1 = a query copied from one
  of its documents), so a threshold learned on one collection means the same on another; the
  scale-free signals (agreement, spread, relative gap) as they are. Needs the profile in the
  inputs (a retrieval with components carries it).
- `hops`: whether the question needs more than one document, from its wording alone: a comparison
  ("Are X and Y both ...", "Which is older, X or Y?"), a chain of relations ("the director of the
  film that ..."), relative clauses, and how many named things it mentions. With `retrieval`'s
  document spread, what tells multi-hop questions (the `multi_step` actions) from single-hop ones.
- `probe`: log-prob statistics of a closed-book draft (optional: it costs one short LM call).
- `embedding`: the query's MiniLM vector (the ingest embedder), so the model can learn topics.

`router_inputs` reduces a Retrieval to a small JSON-able dict (stored with training labels and in
decisions); `vectorize` turns inputs into the feature vector. Both run at training and at query
time, so the two can never compute a feature differently.
"""

from __future__ import annotations

import math
import re
from typing import Mapping, Sequence

import numpy as np

from adaptive_rag.retrieve import Retrieval

GROUPS = ("form", "retrieval", "retrieval_norm", "hops", "probe", "embedding")
COMPARISON_WORDS = frozenset(("both", "same", "either", "neither", "older", "younger", "first", "earlier", "later",
                              "larger", "smaller", "longer", "shorter", "higher", "more", "fewer", "less"))
RELATIVE_WORDS = frozenset(("who", "which", "that", "whose", "whom", "where", "when"))
DEFAULT_GROUPS = ("form", "retrieval", "embedding")
WH_WORDS = ("what", "who", "when", "where", "which", "how", "why")
YES_NO = ("is", "are", "was", "were", "do", "does", "did", "can", "could", "has", "have", "will", "would", "should")
PROBE_SIGNALS = ("mean_logprob", "min_logprob", "first_logprob", "mean_entropy", "refusal_logprob")
TOP = 5


def _overlap(a: Sequence[str], b: Sequence[str]) -> float:
    return len(set(a) & set(b)) / max(1, min(len(a), len(b))) if a and b else 0.0


def router_inputs(query: str, retrieval: Retrieval, probe: Mapping[str, float | None] | None = None) -> dict:
    """What the features need from one query, as plain JSON (the query vector included)."""
    dense = [h.score for h in retrieval.dense_hits or []]
    bm25 = [h.score for h in retrieval.bm25_hits or []]
    dense_ids = [h.chunk_id for h in (retrieval.dense_hits or [])[:TOP]]
    bm25_ids = [h.chunk_id for h in (retrieval.bm25_hits or [])[:TOP]]
    hybrid = retrieval.hits[:TOP]
    return {
        "query": query,
        "dense_scores": dense[:TOP], "bm25_scores": bm25[:TOP],
        "agreement": _overlap(dense_ids, bm25_ids),
        "top1_agree": float(bool(dense_ids and bm25_ids and dense_ids[0] == bm25_ids[0])),
        "hybrid_docs": len({h.doc_id for h in hybrid}),
        "hybrid_hits": len(hybrid),
        "probe": {k: (probe or {}).get(k) for k in PROBE_SIGNALS} if probe is not None else None,
        "query_vector": retrieval.query_vector,
        "profile": retrieval.profile.anchors() if retrieval.profile is not None else None,
    }


def answer_signals(signals: Mapping[str, float | None], unanswerable: bool) -> dict:
    """A route's log-prob signals plus its refusal verdict: what the probe calibrators read."""
    return {**signals, "said_unanswerable": float(bool(unanswerable))}


def _form(query: str) -> dict[str, float]:
    words = re.findall(r"[A-Za-z0-9']+", query)
    lower = [w.lower() for w in words]
    wh = next((w for w in lower if w in WH_WORDS), "other")
    out = {"form_log_words": math.log1p(len(words)), "form_question_mark": float(query.strip().endswith("?")),
           "form_yes_no": float(bool(lower) and lower[0] in YES_NO),
           "form_has_digit": float(any(c.isdigit() for c in query)),
           "form_capitalised": float(sum(1 for w in words[1:] if w[:1].isupper())) / max(1, len(words))}
    out.update({f"form_wh_{w}": float(wh == w) for w in (*WH_WORDS, "other")})
    return out


def _hops(query: str) -> dict[str, float]:
    words = re.findall(r"[A-Za-z0-9']+", query)
    lower = [w.lower() for w in words]
    entities, inside = 0, False
    for w in words[1:]:  # runs of capitalised words after the first: one named thing each
        capital = w[:1].isupper()
        entities += capital and not inside
        inside = capital
    two_options = bool(re.search(r"\b[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*\s+or\s+[A-Z]", query))
    return {"hop_comparison": float(bool(COMPARISON_WORDS & set(lower)) or two_options
                                    or (bool(lower) and lower[0] in YES_NO and " and " in query)),
            "hop_of_chain": math.log1p(len(re.findall(r"\bof\s+(?:the|a|an|his|her|their|its)\b", query, re.IGNORECASE))),
            "hop_relative": math.log1p(sum(1 for w in lower[1:] if w in RELATIVE_WORDS)),
            "hop_entities": math.log1p(entities)}


def _gap(scores: Sequence[float]) -> float:
    return scores[0] - scores[1] if len(scores) > 1 else 0.0


def _retrieval(inputs: Mapping) -> dict[str, float]:
    dense, bm25 = list(inputs["dense_scores"]), list(inputs["bm25_scores"])
    terms = max(1, len(re.findall(r"[A-Za-z0-9']+", inputs["query"])))
    return {
        "ret_dense_top": dense[0] if dense else 0.0, "ret_dense_gap": _gap(dense),
        "ret_dense_mean": float(np.mean(dense)) if dense else 0.0,
        "ret_bm25_top": math.log1p(bm25[0]) if bm25 else 0.0,
        "ret_bm25_top_per_term": (bm25[0] / terms) if bm25 else 0.0,
        **_scale_free(inputs, "ret"),
    }


def _scale_free(inputs: Mapping, prefix: str) -> dict[str, float]:
    """The retrieval signals with no collection-specific scale (a relative gap, the rankings'
    agreement, the spread over documents), named for the group that reads them."""
    bm25 = list(inputs["bm25_scores"])
    return {f"{prefix}_bm25_gap_rel": (_gap(bm25) / bm25[0]) if bm25 and bm25[0] > 0 else 0.0,
            f"{prefix}_agreement": float(inputs["agreement"]), f"{prefix}_top1_agree": float(inputs["top1_agree"]),
            f"{prefix}_doc_spread": inputs["hybrid_docs"] / max(1, inputs["hybrid_hits"])}


def _retrieval_norm(inputs: Mapping) -> dict[str, float]:
    from adaptive_rag.retrieval_profile import normalised, span

    profile = inputs.get("profile")
    if not profile:
        return {}  # vectorize names what is missing
    dense, bm25 = list(inputs["dense_scores"]), [math.log1p(max(0.0, b)) for b in inputs["bm25_scores"]]
    return {
        "rn_dense_top": normalised(dense[0] if dense else 0.0, profile["dense"]),
        "rn_dense_mean": normalised(float(np.mean(dense)) if dense else 0.0, profile["dense"]),
        "rn_dense_gap": _gap(dense) / span(profile["dense"]),
        "rn_bm25_top": normalised(bm25[0] if bm25 else 0.0, profile["bm25"]),
        "rn_bm25_gap": _gap(bm25) / span(profile["bm25"]),
        **_scale_free(inputs, "rn"),
    }


def _probe(inputs: Mapping) -> dict[str, float]:
    probe = inputs.get("probe") or {}
    out = {}
    for name in PROBE_SIGNALS:
        value = probe.get(name)
        out[f"probe_{name}"] = float(value) if value is not None else 0.0
        out[f"probe_{name}_missing"] = float(value is None)
    return out


def feature_names(groups: Sequence[str], embedding_dim: int) -> list[str]:
    dummy = {"query": "x", "dense_scores": [], "bm25_scores": [], "agreement": 0, "top1_agree": 0,
             "hybrid_docs": 0, "hybrid_hits": 0, "probe": None, "query_vector": [0.0] * embedding_dim,
             "profile": {"dense": [0.0, 1.0], "bm25": [0.0, 1.0]}}
    return list(_named(dummy, groups))


def _named(inputs: Mapping, groups: Sequence[str]) -> dict[str, float]:
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown feature groups {sorted(unknown)}; valid: {', '.join(GROUPS)}")
    out: dict[str, float] = {}
    if "form" in groups:
        out.update(_form(inputs["query"]))
    if "retrieval" in groups:
        out.update(_retrieval(inputs))
    if "retrieval_norm" in groups:
        out.update(_retrieval_norm(inputs))
    if "hops" in groups:
        out.update(_hops(inputs["query"]))
    if "probe" in groups:
        out.update(_probe(inputs))
    if "embedding" in groups:
        vector = inputs.get("query_vector") or []
        out.update({f"emb_{i}": float(v) for i, v in enumerate(vector)})
    return out


def vectorize(inputs: Mapping, groups: Sequence[str], names: Sequence[str]) -> np.ndarray:
    """The feature vector in the order of `names` (an artifact's list); a missing name is an error,
    because a silently zeroed feature would make the classifier quietly wrong."""
    named = _named(inputs, groups)
    missing = [n for n in names if n not in named]
    if missing:
        raise ValueError(f"features {missing[:3]}{'...' if len(missing) > 3 else ''} cannot be computed "
                         f"(the embedder's dimension or the feature groups differ from training)")
    return np.array([named[n] for n in names], dtype=np.float64)

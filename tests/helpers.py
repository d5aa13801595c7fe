"""Helpers shared by the unit and integration tests (test modules never import each other)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def arag(settings, *args):
    """Run the `arag` CLI in a subprocess on `settings`' data directory and embedder."""
    env = {**os.environ, "ARAG_DATA_DIR": str(settings.data_dir), "ARAG_EMBEDDER_PATH": str(settings.embedder_path),
           "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "adaptive_rag.cli", *args], env=env, capture_output=True, text=True, timeout=300)


def synthetic_rows(n=160, seed=0, dim=8):
    """Deterministic rows where retrieval confidence decides RAG and the draft's log-prob decides
    closed-book, with noise, so a model can learn but not memorise."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        dense = float(rng.uniform(0.2, 0.9))
        cb_lp = float(rng.uniform(-3.0, 0.0))
        cb_ok = cb_lp > -0.6 and rng.random() < 0.9
        rag_ok = dense > 0.5 if rng.random() < 0.85 else dense <= 0.5
        lc_ok = (not rag_ok) and rng.random() < 0.5
        outcomes = {
            "closed_book": {"correct": cb_ok, "f1": float(cb_ok), "tokens": 50, "unanswerable": False,
                            "signals": {"mean_logprob": cb_lp, "min_logprob": cb_lp - 0.5, "first_logprob": cb_lp,
                                        "mean_entropy": -cb_lp / 2, "refusal_logprob": -8.0}},
            "rag": {"correct": rag_ok, "f1": float(rag_ok), "tokens": 800, "unanswerable": False,
                    "signals": {"mean_logprob": -0.2 if rag_ok else -0.9, "min_logprob": -1.0, "first_logprob": -0.3,
                                "refusal_logprob": -6.0 if rag_ok else -3.0, "refusal_margin": 3.0}},
            "long_context": {"correct": lc_ok, "f1": float(lc_ok), "tokens": 4000, "unanswerable": False, "signals": {}},
        }
        label = "closed_book" if cb_ok else "rag" if rag_ok else "long_context" if lc_ok else "none"
        vec = [float(v) for v in rng.normal(size=dim)]
        inputs = {"query": f"What is thing {i}?", "dense_scores": [dense, dense - 0.1], "bm25_scores": [10 * dense, 2.0],
                  "agreement": 0.4, "top1_agree": 1.0, "hybrid_docs": 2, "hybrid_hits": 5, "query_vector": vec,
                  "probe": outcomes["closed_book"]["signals"]}
        rows.append({"id": str(i), "question": inputs["query"], "collection": "kb", "inputs": inputs,
                     "outcomes": outcomes, "label": label})
    return rows

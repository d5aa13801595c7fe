#!/bin/bash
# The multi_step route on HotpotQA dev (docs/results.md, "Multi-hop questions"): a seeded subset of
# the dev split, both strategies, against single-shot RAG on the same questions. Every run resumes
# (records and the generation cache). Set ARAG_DATA_DIR / ARAG_MODEL_CACHE_DIR; about 90 s per
# question on 2 cores for all six policies.
set -x
cd "$(dirname "$0")/.."
A=${ARAG:-.venv/bin/arag}
N=${N:-60}
export ARAG_STRONG_MODEL=qwen2.5-coder-1.5b
OUT=eval/results/multi_step
ARAG_MULTI_STEP_STRATEGY=interleaved $A eval --dataset hotpotqa --split dev --limit $N --seed 0 \
  --policies always_rag,always_strong_rag,always_multi_step,strong_multi_step --out $OUT/hotpotqa-dev-interleaved || exit 1
ARAG_MULTI_STEP_STRATEGY=decompose $A eval --dataset hotpotqa --split dev --limit $N --seed 0 \
  --policies always_multi_step,strong_multi_step --out $OUT/hotpotqa-dev-decompose || exit 1
# Second measurement (docs/results.md, "second measurement"): the strong model only, about 40 s per
# question per multi-step policy on 2 cores. Interleaved after its first run, where both models
# answered at the first reasoning step: the first step may not answer now, so it retrieves at least
# twice (hotpotqa-dev-interleaved2, with the final prompt of that time). Beside it on the same
# questions: single-shot RAG reading as many chunks as three steps (top_k 15), the rival that more
# chunks alone would be; the final call asking for the answer alone (interleaved-short); the final
# call reading the chunks only (interleaved-chunks); long context on the strong model.
ARAG_MULTI_STEP_STRATEGY=interleaved $A eval --dataset hotpotqa --split dev --limit $N --seed 0 \
  --policies always_strong_rag,strong_multi_step --out $OUT/hotpotqa-dev-interleaved2 || exit 1
ARAG_TOP_K=15 $A eval --dataset hotpotqa --split dev --limit $N --seed 0 \
  --policies always_strong_rag --out $OUT/hotpotqa-dev-rag-top15 || exit 1
ARAG_MULTI_STEP_STRATEGY=interleaved $A eval --dataset hotpotqa --split dev --limit $N --seed 0 \
  --policies strong_multi_step --out $OUT/hotpotqa-dev-interleaved-short || exit 1
ARAG_MULTI_STEP_STRATEGY=interleaved ARAG_MULTI_STEP_NOTES=false $A eval --dataset hotpotqa --split dev --limit $N \
  --seed 0 --policies strong_multi_step --out $OUT/hotpotqa-dev-interleaved-chunks || exit 1
$A eval --dataset hotpotqa --split dev --limit $N --seed 0 \
  --policies always_strong_lc --out $OUT/hotpotqa-dev-strong-lc || exit 1

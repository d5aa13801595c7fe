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

#!/bin/bash
# The internal-state probe measurements on the dev splits (docs/results.md, "Verifying the small
# model's answer with its probe"), after the probe labels exist (python -m eval.probe_labels, as
# in docs/evaluation.md). Every step resumes: an eval run continues from its records, generations
# come from the eval cache. About 2 hours on 2 cores; the strong long-context subset about 1 more.
# Set ARAG_DATA_DIR / ARAG_MODEL_CACHE_DIR as for the labels (the probes are saved beside the routers).
set -x
cd "$(dirname "$0")/.."
A=${ARAG:-.venv/bin/arag}
PY=${PYTHON:-.venv/bin/python}
POLICIES=always_rag,always_weak_rag,always_strong_rag,verified_rag,cascade,adaptive,adaptive_v1
export ARAG_STRONG_MODEL=qwen2.5-coder-1.5b

# probes fitted on the labels' train questions only, so that dev measures them (the first runs
# used answer probes of the states alone: --no-combine)
for ds in squad-dev:squad hotpotqa:hotpot; do
  for kind in answer prompt; do
    $A gatekeeper probe --labels eval/results/probes/${ds%%:*} --name ${ds##*:}-$kind-train --kind $kind --fit-on train \
      --no-combine || exit 1
  done
done
# what the in-generation probe costs, against a second pass, and whether they agree
$PY -m eval.bench probe --labels eval/results/probes/squad-dev --probe squad-answer-train --questions 150 \
  --out eval/results/probes/bench_probe_squad.json || exit 1
# verified_rag, adaptive (two stages) and the fixed policies on dev
ARAG_ANSWER_PROBES=squad-answer-train,squad-prompt-train $A eval --dataset squad-dev --split dev --limit 200 \
  --policies $POLICIES --out eval/results/probes/squad-dev-verified || exit 1
ARAG_ANSWER_PROBES=hotpot-answer-train,hotpot-prompt-train $A eval --dataset hotpotqa --split dev --limit 150 \
  --policies $POLICIES --out eval/results/probes/hotpotqa-dev-verified || exit 1
# the same SQuAD questions with the combined answer probe (stacked with the output signals; the
# engine's part is unchanged, so every answer comes from the cache)
$A gatekeeper probe --labels eval/results/probes/squad-dev --name squad-answer-combined --kind answer --fit-on train || exit 1
ARAG_ANSWER_PROBES=squad-answer-combined,squad-prompt-train $A eval --dataset squad-dev --split dev --limit 200 \
  --policies $POLICIES --out eval/results/probes/squad-dev-verified-combined || exit 1
# long context on the strong model (whole documents, ARAG_STRONG_LONG_CONTEXT_BUDGET = 8,000 tokens)
$A eval --dataset squad-dev --split dev --limit 100 --policies always_rag,always_strong_rag,always_strong_lc \
  --out eval/results/strong-lc/squad-dev || exit 1

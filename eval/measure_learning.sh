#!/bin/bash
# The learned router's measurements (docs/results.md, "Teaching the router on the collection's own
# traffic"; docs/evaluation.md, "The learning simulation"). Every step resumes: an eval run continues
# from its records, generations and judge calls come from the eval cache. Several hours on 2 cores
# (the judge grades four answers of each of the 300 stream questions). Set ARAG_DATA_DIR /
# ARAG_MODEL_CACHE_DIR; the squad-dev collection is ingested by the first run.
set -x
cd "$(dirname "$0")/.."
A=${ARAG:-.venv/bin/arag}
PY=${PYTHON:-.venv/bin/python}
export ARAG_STRONG_MODEL=qwen2.5-coder-1.5b
P=always_abstain,closed_book,strong_closed_book,always_weak_rag,always_strong_rag
OUT=eval/results/learning
# the stream: 300 questions in arrival order, answered by every fixed action
$A eval --dataset stream-squad --split stream --policies $P --out $OUT/squad-stream || exit 1
$PY -m eval.judge_agreement --records $OUT/squad-stream --dataset stream-squad --split stream \
  --policies closed_book,strong_closed_book,always_weak_rag,always_strong_rag || exit 1
$A gatekeeper panel-labels --records $OUT/squad-stream --collection squad-dev --out $OUT/squad-stream-labels || exit 1
# the replay: static, learning on the judge alone, with 10% gold feedback, the ceiling, the fixed
# actions. The ceiling router learns the gold labels of the stream's first 150 questions (the
# targets score the last 150 only); with the ceiling split's run (arag eval --split ceiling, about
# an hour more) pass --ceiling-labels instead.
$PY -m eval.bench learning --dataset stream-squad --stream-labels $OUT/squad-stream-labels \
  --ceiling-first 150 --judgements $OUT/squad-stream/judgements.jsonl --out $OUT/bench_squad.json || exit 1
# a router on the judge's labels against one on gold labels: trained on one seeded half of the
# stream's questions, scored on the other half
$PY -m eval.judge_router --train $OUT/squad-stream-labels --judgements $OUT/squad-stream/judgements.jsonl \
  --out $OUT/judge_router_squad.json || exit 1
# leave-one-collection-out over the collections with five-action labels (their retrieval profiles
# first: python -m eval.retrieval_profiles --dataset mixed|squad-dev|hotpotqa --out eval/results/profiles/...)
$A eval --dataset hotpotqa --split dev --limit 150 --policies $P --out eval/results/labels-runs/hotpotqa-dev-panel || exit 1
$A gatekeeper panel-labels --records eval/results/labels-runs/hotpotqa-dev-panel --collection hotpotqa-train \
  --out eval/results/labels/hotpotqa-dev-panel || exit 1
$PY -m eval.loco_router --labels mixed=eval/results/labels/mixed-panel --labels squad-dev=$OUT/squad-stream-labels \
  --labels hotpotqa-train=eval/results/labels/hotpotqa-dev-panel --out eval/results/loco || exit 1
# the demo collection: the Jacksonville question before and after teaching (a data directory of its own)
$PY -m eval.teach_demo --data-dir "${TEACH_DIR:-/tmp/teach-demo}" --out $OUT/demo_teach.json || exit 1
# user latency with background exploration on and off (needs a quiet machine)
$PY -m eval.bench exploration --data-dir "${TEACH_DIR:-/tmp/teach-demo}" --requests 30 --rounds 2 \
  --out $OUT/bench_exploration.json

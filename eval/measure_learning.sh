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
# the stream (300 questions in arrival order) and the ceiling split (150 other questions)
$A eval --dataset stream-squad --split stream --policies $P --out $OUT/squad-stream || exit 1
$PY -m eval.judge_agreement --records $OUT/squad-stream --dataset stream-squad --split stream \
  --policies closed_book,strong_closed_book,always_weak_rag,always_strong_rag || exit 1
$A eval --dataset stream-squad --split ceiling --policies $P --out $OUT/squad-ceiling || exit 1
$A gatekeeper panel-labels --records $OUT/squad-stream --collection squad-dev --out $OUT/squad-stream-labels || exit 1
$A gatekeeper panel-labels --records $OUT/squad-ceiling --collection squad-dev --out $OUT/squad-ceiling-labels || exit 1
# the replay: static, learning on the judge alone, with 10% gold feedback, the ceiling, the fixed actions
$PY -m eval.bench learning --dataset stream-squad --stream-labels $OUT/squad-stream-labels \
  --ceiling-labels $OUT/squad-ceiling-labels --judgements $OUT/squad-stream/judgements.jsonl \
  --out $OUT/bench_squad.json || exit 1
# a router on the judge's labels against one on gold labels, scored on the ceiling questions
$PY -m eval.judge_router --train $OUT/squad-stream-labels --judgements $OUT/squad-stream/judgements.jsonl \
  --test $OUT/squad-ceiling-labels --out $OUT/judge_router_squad.json || exit 1
# the demo collection: the Jacksonville question before and after teaching (a data directory of its own)
$PY -m eval.teach_demo --data-dir "${TEACH_DIR:-/tmp/teach-demo}" --out $OUT/demo_teach.json || exit 1
# user latency with background exploration on and off (needs a quiet machine)
$PY -m eval.bench exploration --data-dir "${TEACH_DIR:-/tmp/teach-demo}" --requests 30 --rounds 2 \
  --out $OUT/bench_exploration.json

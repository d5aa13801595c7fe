#!/bin/bash
# Issue 11, run once at the end: train the routers on mixed train, choose adaptive's cost weight
# on mixed dev by the rule declared in docs/evaluation.md, then the final test runs. Resumable: every
# step skips what its output already holds (eval runs resume; the generation cache answers).
set -ex
cd "$(dirname "$0")/.."
A="${ARAG:-.venv/bin/arag}"
export ARAG_STRONG_MODEL=qwen2.5-coder-1.5b
FIXED=always_abstain,closed_book,strong_closed_book,always_weak_rag,always_strong_rag
R=eval/results
# 1. training answers (mixed train, two seeded draws) and the routers trained on them
$A eval --dataset mixed --split train --limit 100 --seed 0 --policies $FIXED,cascade --out $R/mixed-train-weak-strong
$A eval --dataset mixed --split train --limit 120 --seed 1 --policies $FIXED,cascade --out $R/mixed-train2-weak-strong
$A gatekeeper knn --records $R/mixed-train-weak-strong --records $R/mixed-train2-weak-strong --name default
$A gatekeeper panel-labels --records $R/mixed-train-weak-strong --records $R/mixed-train2-weak-strong \
  --collection mixed --out $R/labels/mixed-panel
$A gatekeeper panel --labels $R/labels/mixed-panel --out gatekeeper/default_router
# 2. dev: every learned router beside the fixed policies; the cost weight by the declared rule
$A eval --dataset mixed --split dev --limit 60 --seed 0 --policies $FIXED,cascade,knn_router,adaptive --out $R/mixed-dev-routers
W=$(${PY:-.venv/bin/python} -m eval.choose_cost_weight $R/mixed-dev-routers)
echo "adaptive_cost_weight chosen on dev: $W"
export ARAG_THRESHOLDS="{\"adaptive_cost_weight\": $W}"
# 3. the final test runs (once)
ALL=$FIXED,always_rag,cascade,knn_router,adaptive
$A eval --dataset mixed --split test --limit 200 --seed 0 --policies $FIXED,cascade,knn_router,adaptive --out $R/mixed-final
$A eval --dataset squad-dev --split final --limit 150 --seed 0 --policies $ALL --out $R/squad-final
$A eval --dataset hotpotqa --split final --limit 150 --seed 0 --policies $ALL --out $R/hotpotqa-final
